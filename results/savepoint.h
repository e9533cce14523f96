// Internal to results/: Savepoint, the unit of one Store write that touches
// more than one row. It rolls back unless released, so a write that fails
// half-way leaves nothing behind. It nests inside an open Store::Transaction
// (the scheduler's batch of one loop turn) and is a transaction of its own
// otherwise. One at a time per Store, on the Store's thread.
#pragma once

#include <string_view>

#include "base/error.h"
#include "results/store.h"

namespace hpo::results::detail {

class Savepoint {
 public:
  // SAVEPOINT on `impl`'s connection; an error names `what`.
  static Result<Savepoint> open(Store::Impl& impl, std::string_view what);

  Savepoint(Savepoint&& other) noexcept;
  Savepoint& operator=(Savepoint&&) = delete;
  Savepoint(const Savepoint&) = delete;
  Savepoint& operator=(const Savepoint&) = delete;
  ~Savepoint();  // rolls back to the savepoint unless released

  // Keeps the writes (RELEASE); an error names `what`. On an error the
  // savepoint stays open and the destructor rolls it back.
  Status release(std::string_view what);

 private:
  explicit Savepoint(Store::Impl* impl) : impl_(impl) {}
  Store::Impl* impl_ = nullptr;  // nullptr once released (or moved from)
};

}  // namespace hpo::results::detail
