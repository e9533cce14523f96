#include "scheduler/leases.h"

#include "base/random.h"

namespace hpo::scheduler {

Result<std::string> LeaseTable::new_id() const {
  // 128 bits: a collision is not expected in the life of the universe, but costs one loop to
  // rule out among the ids that matter (the live and waiting ones).
  for (;;) {
    auto id = random_hex(16);
    if (!id) return fail(ErrorCode::kIo, "a new lease id: " + id.error().message);
    if (!leases_.contains(*id) && !recovering_.contains(*id)) return id;
  }
}

Lease* LeaseTable::find(const std::string& id) {
  auto it = leases_.find(id);
  return it == leases_.end() ? nullptr : &it->second;
}

Lease* LeaseTable::fenced(const std::string& id, const std::string& agent,
                          const std::string& agent_key, std::optional<std::size_t> study,
                          std::int64_t trial, std::int64_t attempt) {
  Lease* l = find(id);
  if (l && l->agent == agent && l->agent_key == agent_key && l->is(study, trial, attempt)) return l;
  return nullptr;
}

bool LeaseTable::held(const std::string& id, const std::string& agent) const {
  auto it = leases_.find(id);
  return it != leases_.end() && it->second.agent == agent;
}

std::optional<Lease> LeaseTable::release(const std::string& id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  Lease l = std::move(it->second);
  leases_.erase(it);
  return l;
}

std::vector<std::string> LeaseTable::held_by(const std::string& agent) const {
  std::vector<std::string> held;
  for (const auto& [id, l] : leases_) {
    if (l.agent == agent) held.push_back(id);
  }
  return held;
}

std::vector<std::string> LeaseTable::transfer(const std::string& previous, const std::string& agent,
                                              const std::string& agent_key,
                                              Announcements& announced) {
  std::vector<std::string> moved;
  for (const auto& id : held_by(previous)) {
    Lease& l = leases_[id];
    if (l.agent_key != agent_key) continue;
    auto t = announced.find(id);
    if (t != announced.end() && l.is(t->second.study, t->second.trial, t->second.attempt)) {
      l.agent = agent;
      moved.push_back(id);
      announced.erase(t);
    }
  }
  return moved;
}

LeaseTable::Sorted LeaseTable::sort(const std::string& agent, const std::string& agent_key,
                                    const Announcements& announced) const {
  Sorted out;
  for (const auto& [id, t] : announced) {
    const Recovering* rec = recovering(id);
    if (rec && rec->trial.agent_key == agent_key && rec->is(t.study, t.trial, t.attempt)) {
      out.readopt.push_back(*rec);
    } else if (!held(id, agent)) {
      out.stop.push_back(id);
    }
  }
  return out;
}

const Recovering* LeaseTable::recovering(const std::string& id) const {
  auto it = recovering_.find(id);
  return it == recovering_.end() ? nullptr : &it->second;
}

bool LeaseTable::readopt(const std::string& id, const std::string& agent,
                         const std::string& agent_key) {
  auto it = recovering_.find(id);
  if (it == recovering_.end() || it->second.trial.agent_key != agent_key) return false;
  const Recovering& r = it->second;
  leases_[id] = Lease{r.study, r.trial.number, r.trial.attempt, agent, agent_key, 0, {}};
  recovering_.erase(it);
  return true;
}

bool LeaseTable::recovery_due(double now) const {
  return !recovering_.empty() && now >= recovery_deadline_;
}

std::vector<Recovering> LeaseTable::close_recovery() {
  std::vector<Recovering> waiting;
  waiting.reserve(recovering_.size());
  for (const auto& [id, r] : recovering_) waiting.push_back(r);
  recovering_.clear();
  return waiting;
}

std::optional<double> LeaseTable::recovery_deadline() const {
  if (recovering_.empty()) return std::nullopt;
  return recovery_deadline_;
}

}  // namespace hpo::scheduler
