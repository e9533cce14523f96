// The multi-host test bed for the Catch tests: tests/netbed/bed.h (the hosts, the switch,
// how they are made and torn down), with a failure to build it or to pull a cable failing
// the test (REQUIRE), and launchers for test::Process.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "tests/netbed/bed.h"
#include "tests/support/process.h"

namespace hpo::cluster {

using netbed::Host;

class Bed {
 public:
  // "" when the bed can be built here, else why not (for HPO_SKIP).
  static std::string missing_prerequisite() { return netbed::Bed::missing_prerequisite(); }

  // The switch, the scheduler host and `agents` agent hosts (netbed::Bed::build); a
  // failure fails the test.
  Bed(int agents, const std::filesystem::path& root);

  const Host& scheduler() const { return bed_->scheduler(); }
  const Host& agent(int i) const { return bed_->agent(i); }  // 1-based
  int agents() const { return bed_->agents(); }
  std::string endpoint(int port) const { return bed_->endpoint(port); }

  // How a test::Process runs hpo on `host`.
  test::Process::Launcher launcher(const Host& host) const { return {bed_->launcher(host)}; }

  // Pulls (false) or plugs back (true) the host's cable (netbed::Bed::link).
  void link(const Host& host, bool up) const;

 private:
  std::unique_ptr<netbed::Bed> bed_;
};

}  // namespace hpo::cluster
