#include "scheduler/dispatcher.h"

#include <optional>

#include "scheduler/log.h"

namespace hpo::scheduler {

Result<std::vector<Dispatcher::Assignment>> Dispatcher::fill(results::Store& store,
                                                             Studies& studies,
                                                             AgentRegistry& agents,
                                                             LeaseTable& leases, double now,
                                                             CheckpointStore* checkpoints) {
  std::vector<Assignment> out;
  if (studies.empty()) return out;
  std::vector<Agent*> free = agents.with_free_slots();
  bool progress = true;
  while (progress && !free.empty()) {
    progress = false;
    for (Agent* a : free) {
      if (a->free <= 0) continue;
      // The next study (round-robin) that can lease and has a trial.
      std::optional<std::int64_t> number;
      std::size_t si = 0;
      for (std::size_t k = 0; k < studies.size() && !number; ++k) {
        si = (next_study_ + k) % studies.size();
        if (!studies[si].can_lease(now)) continue;
        auto n = studies[si].next_trial(store, now);
        if (!n) return std::unexpected(n.error());
        number = *n;
      }
      if (!number) return out;
      next_study_ = (si + 1) % studies.size();
      auto& s = studies[si];
      std::int64_t attempt = s.next_attempt(*number);
      auto id = leases.new_id();
      if (!id) return std::unexpected(id.error());
      std::optional<CheckpointInfo> from;
      if (auto parent = s.take_checkpoint_copy(*number); parent && checkpoints) {
        // PBT's exploit: the child starts from its parent's checkpoint.
        if (auto c = checkpoints->copy({s.id(), *parent}, {s.id(), *number}); !c) {
          log_line(s.name() + "#" + std::to_string(*number) + ": cannot copy the checkpoint of " +
                   "its parent #" + std::to_string(*parent) + " (" + c.error().message +
                   "); it starts afresh");
        }
      }
      if (checkpoints) from = checkpoints->find({s.id(), *number});
      const std::int64_t trial_id = s.trial_id(*number);
      if (auto r = store.start_trial(trial_id, attempt, *id, a->name, a->key, now); !r) {
        return std::unexpected(r.error());
      }
      if (from) {
        if (auto r = store.carry_metrics(trial_id, attempt - 1, attempt); !r) {
          return std::unexpected(r.error());
        }
      }
      s.started(*number, attempt, from.has_value());
      leases.grant(*id, Lease{si, *number, attempt, a->routing_id, a->key, 0, {}});
      AgentRegistry::leased(*a);
      if (verbose_) {
        log_line("lease " + *id + ": " + s.name() + "#" + std::to_string(*number) + " attempt " +
                 std::to_string(attempt) + " -> " + a->name +
                 (from ? " (resumes from checkpoint " + std::to_string(from->seq) + ")" : ""));
      }
      protocol::Assign assign{s.name(), *number, attempt, *id, s.history()[*number].config,
                              s.spec().trial};
      if (from) {
        assign.resume = protocol::CheckpointRef{static_cast<std::int64_t>(from->bytes),
                                                from->sha256};
        // For an agent that sees a shared checkpoint directory (it ignores it otherwise).
        assign.resume->path = checkpoints->relative_path_of({s.id(), *number});
      }
      assign.pausable = s.pauses();
      out.emplace_back(a->routing_id, std::move(assign));
      progress = true;
    }
  }
  return out;
}

}  // namespace hpo::scheduler
