// Store: transactions. Store::Transaction (store.h) is the caller's batch,
// BEGIN IMMEDIATE ... COMMIT; detail::Savepoint (savepoint.h) is the store's
// own unit of one write, which nests inside it. Both roll back unless
// finished explicitly.
#include <utility>

#include "results/store_impl.h"

namespace hpo::results {

// ---------------------------------------------------------------- transactions

Store::Transaction::Transaction(Transaction&& other) noexcept
    : impl_(std::exchange(other.impl_, nullptr)) {}

Store::Transaction& Store::Transaction::operator=(Transaction&& other) noexcept {
  if (this != &other) {
    rollback();
    impl_ = std::exchange(other.impl_, nullptr);
  }
  return *this;
}

Store::Transaction::~Transaction() { rollback(); }

Status Store::Transaction::commit() {
  if (impl_ == nullptr) return fail("commit: the transaction is already finished");
  Impl* impl = std::exchange(impl_, nullptr);
  impl->in_transaction = false;
  if (auto ok = impl->exec("COMMIT", "committing"); !ok) {
    // A failed COMMIT may leave the transaction open; never leave it half-done.
    if (sqlite3_get_autocommit(impl->db.get()) == 0) (void)impl->exec("ROLLBACK", "rolling back");
    return ok;
  }
  return {};
}

void Store::Transaction::rollback() {
  if (impl_ == nullptr) return;
  Impl* impl = std::exchange(impl_, nullptr);
  impl->in_transaction = false;
  if (sqlite3_get_autocommit(impl->db.get()) == 0) (void)impl->exec("ROLLBACK", "rolling back");
}

Result<Store::Transaction> Store::begin() {
  if (auto ok = impl_->writable("begin a transaction"); !ok) return std::unexpected(ok.error());
  if (impl_->in_transaction) return fail(impl_->path + ": a transaction is already open");
  if (auto ok = impl_->exec("BEGIN IMMEDIATE", "beginning a transaction"); !ok) {
    return std::unexpected(ok.error());
  }
  impl_->in_transaction = true;
  return Transaction(impl_.get());
}

// ---------------------------------------------------------------- the caller's savepoints

Result<Store::Savepoint> Store::savepoint() {
  if (!impl_->in_transaction) return fail(ErrorCode::kInternal, "savepoint: no transaction open");
  if (auto ok = impl_->step_cached("SAVEPOINT hpo_unit", "opening a savepoint"); !ok) {
    return std::unexpected(ok.error());
  }
  return Savepoint(impl_.get());
}

Store::Savepoint::Savepoint(Savepoint&& other) noexcept
    : impl_(std::exchange(other.impl_, nullptr)) {}

Store::Savepoint::~Savepoint() { (void)rollback(); }

Status Store::Savepoint::release() {
  if (impl_ == nullptr) return fail(ErrorCode::kInternal, "savepoint: already finished");
  Impl* impl = std::exchange(impl_, nullptr);
  if (auto ok = impl->step_cached("RELEASE hpo_unit", "releasing a savepoint"); !ok) {
    // Still open: undo it rather than leave it half-finished.
    (void)impl->step_cached("ROLLBACK TO hpo_unit", "rolling back a savepoint");
    (void)impl->step_cached("RELEASE hpo_unit", "rolling back a savepoint");
    return ok;
  }
  return {};
}

Status Store::Savepoint::rollback() {
  if (impl_ == nullptr) return {};
  Impl* impl = std::exchange(impl_, nullptr);
  if (sqlite3_get_autocommit(impl->db.get()) != 0) {
    return fail(ErrorCode::kIo, impl->path + ": the open transaction was rolled back by SQLite");
  }
  if (auto ok = impl->step_cached("ROLLBACK TO hpo_unit", "rolling back a savepoint"); !ok) {
    return fail(ErrorCode::kIo, ok.error());
  }
  if (auto ok = impl->step_cached("RELEASE hpo_unit", "rolling back a savepoint"); !ok) {
    return fail(ErrorCode::kIo, ok.error());
  }
  return {};
}

// ---------------------------------------------------------------- savepoints

namespace detail {

Result<Savepoint> Savepoint::open(Store::Impl& impl, std::string_view what) {
  if (auto ok = impl.step_cached("SAVEPOINT hpo_write", what); !ok) {
    return std::unexpected(ok.error());
  }
  return Savepoint(&impl);
}

Savepoint::Savepoint(Savepoint&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {}

Savepoint::~Savepoint() {
  if (impl_ == nullptr) return;
  (void)impl_->step_cached("ROLLBACK TO hpo_write", "rolling back");
  (void)impl_->step_cached("RELEASE hpo_write", "rolling back");
}

Status Savepoint::release(std::string_view what) {
  if (impl_ == nullptr) return fail("release: the savepoint is already finished");
  if (auto ok = impl_->step_cached("RELEASE hpo_write", what); !ok) return ok;
  impl_ = nullptr;
  return {};
}

}  // namespace detail

}  // namespace hpo::results
