#include "scheduler/leases.h"

namespace hpo::scheduler {

std::string LeaseTable::lease_id(std::int64_t study_id, std::int64_t number, std::int64_t attempt) {
  return std::to_string(study_id) + "." + std::to_string(number) + "." + std::to_string(attempt);
}

Lease* LeaseTable::find(const std::string& id) {
  auto it = leases_.find(id);
  return it == leases_.end() ? nullptr : &it->second;
}

Lease* LeaseTable::fenced(const std::string& id, const std::string& agent,
                          std::optional<std::size_t> study, std::int64_t trial,
                          std::int64_t attempt) {
  Lease* l = find(id);
  if (l && l->agent == agent && l->is(study, trial, attempt)) return l;
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
                                              Announcements& announced) {
  std::vector<std::string> moved;
  for (const auto& id : held_by(previous)) {
    Lease& l = leases_[id];
    auto t = announced.find(id);
    if (t != announced.end() && l.is(t->second.study, t->second.trial, t->second.attempt)) {
      l.agent = agent;
      moved.push_back(id);
      announced.erase(t);
    }
  }
  return moved;
}

LeaseTable::Sorted LeaseTable::sort(const std::string& agent,
                                    const Announcements& announced) const {
  Sorted out;
  for (const auto& [id, t] : announced) {
    const Recovering* rec = recovering(id);
    if (rec && rec->is(t.study, t.trial, t.attempt)) {
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

void LeaseTable::readopt(const std::string& id, const std::string& agent) {
  auto it = recovering_.find(id);
  if (it == recovering_.end()) return;
  const Recovering& r = it->second;
  leases_[id] = Lease{r.study, r.trial.number, r.trial.attempt, agent, 0, {}};
  recovering_.erase(it);
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
