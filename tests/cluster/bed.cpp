#include "tests/cluster/bed.h"

#include <catch2/catch.hpp>

namespace hpo::cluster {

Bed::Bed(int agents, const std::filesystem::path& root) {
  auto bed = netbed::Bed::build(agents, root);
  INFO((bed ? std::string() : bed.error().message));
  REQUIRE(bed);
  bed_ = std::move(*bed);
}

void Bed::link(const Host& host, bool up) const {
  auto s = bed_->link(host, up);
  INFO((s ? std::string() : s.error().message));
  REQUIRE(s);
}

}  // namespace hpo::cluster
