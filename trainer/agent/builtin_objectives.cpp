#include "trainer/agent/builtin_objectives.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numbers>

#include "trainer/agent/curves.h"

namespace hpo::agent {
namespace {

using Clock = std::chrono::steady_clock;

double number_at(const nlohmann::json& object, const char* key, double fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return fallback;
  return it->get<double>();
}

}  // namespace

double branin(double x1, double x2) {
  constexpr double pi = std::numbers::pi;
  const double a = 1.0, b = 5.1 / (4 * pi * pi), c = 5 / pi, r = 6, s = 10, t = 1 / (8 * pi);
  double q = x2 - b * x1 * x1 + c * x1 - r;
  return a * q * q + s * (1 - t) * std::cos(x1) + s;
}

double hartmann6(const std::array<double, 6>& x) {
  static constexpr double alpha[4] = {1.0, 1.2, 3.0, 3.2};
  static constexpr double A[4][6] = {{10, 3, 17, 3.5, 1.7, 8},
                                     {0.05, 10, 17, 0.1, 8, 14},
                                     {3, 3.5, 1.7, 10, 17, 8},
                                     {17, 8, 0.05, 10, 0.1, 14}};
  static constexpr double P[4][6] = {{0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886},
                                     {0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991},
                                     {0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650},
                                     {0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381}};
  double sum = 0;
  for (int i = 0; i < 4; ++i) {
    double inner = 0;
    for (int j = 0; j < 6; ++j) inner += A[i][j] * (x[j] - P[i][j]) * (x[j] - P[i][j]);
    sum += alpha[i] * std::exp(-inner);
  }
  return -sum;
}

struct BuiltinRunner::Trial {
  protocol::Assign assign;
  double value = 0;   // final objective
  std::string error;  // non-empty: the trial fails at its end
  std::string metric = "value";
  int steps = 0;
  int first_step = 1;  // 1, or the epoch after a resumed checkpoint's
  int next_step = 1;   // next intermediate to report (1-based)
  Clock::time_point start;
  Clock::duration length{};  // from first_step to the end
  std::optional<StopReason> stopped;
  std::optional<CurveParams> curve;  // set for "curves"
  std::string checkpoint_dir;        // curves: where the state goes after each epoch ("": none)
  bool cut_short = false;            // the checkpoint could not be written: fail now

  Clock::time_point step_time(int k) const {
    return start + length * (k - first_step + 1) / std::max(steps - first_step + 1, 1);
  }
  double value_at(int k) const { return curve ? curve_accuracy(*curve, k) : value + (steps - k); }
};

namespace {

std::string string_at(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

// Epochs `steps` (0: kCurveEpochs), `seconds` per epoch; resumes after the epoch in
// resume_from's state and writes checkpoint_dir's state after each epoch (either may be "").
Status BuiltinRunner::start_curves(Trial& trial) {
  const auto& spec = trial.assign.spec;
  auto params = curve_params(trial.assign.config);
  if (!params) return std::unexpected(params.error());
  trial.curve = *params;
  trial.metric = kCurveMetric;
  if (trial.steps <= 0) trial.steps = kCurveEpochs;
  if (std::string from = string_at(spec, "resume_from"); !from.empty()) {
    auto epoch = read_curve_state(from);
    if (!epoch) return std::unexpected(epoch.error());
    trial.first_step = static_cast<int>(std::min<std::int64_t>(*epoch, trial.steps)) + 1;
    trial.next_step = trial.first_step;
  }
  trial.checkpoint_dir = string_at(spec, "checkpoint_dir");
  if (!trial.checkpoint_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(trial.checkpoint_dir, ec);
    if (ec) return fail(ErrorCode::kIo, trial.checkpoint_dir + ": cannot create: " + ec.message());
  }
  const double per_epoch = std::max(0.0, number_at(spec, "seconds", kCurveSecondsPerEpoch));
  trial.length = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(per_epoch * (trial.steps - trial.first_step + 1)));
  return {};
}

BuiltinRunner::BuiltinRunner() = default;
BuiltinRunner::~BuiltinRunner() = default;

Status BuiltinRunner::start(const protocol::Assign& assign, const TrialFiles& files) {
  auto trial = std::make_unique<Trial>();
  trial->assign = assign;
  auto& spec = trial->assign.spec;
  const auto& config = assign.config;
  std::string function = spec.value("function", "");
  if (spec.is_object()) {
    // A state written each epoch costs a file and a rename: only for a trial that may pause.
    const std::string checkpoint = files.pausable ? files.checkpoint_dir : "";
    for (auto [key, dir] : {std::pair{"checkpoint_dir", &checkpoint},
                            std::pair{"resume_from", &files.resume_from}}) {
      if (!dir->empty() && !spec.contains(key)) spec[key] = *dir;
    }
  }
  trial->start = Clock::now();
  trial->steps = static_cast<int>(std::max(0.0, number_at(spec, "steps", 0)));
  if (function == "branin") {
    trial->value = branin(number_at(config, "x1", 0), number_at(config, "x2", 0));
  } else if (function == "hartmann6") {
    std::array<double, 6> x{};
    for (int i = 0; i < 6; ++i) {
      const std::string key = std::string("x").append(std::to_string(i + 1));
      x[i] = number_at(config, key.c_str(), 0);
    }
    trial->value = hartmann6(x);
  } else if (function == "sleep") {
    double seconds = std::max(0.0, number_at(config, "seconds", number_at(spec, "seconds", 1.0)));
    trial->length =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    trial->value = number_at(config, "x", seconds);
  } else if (function == "curves") {
    if (auto s = start_curves(*trial); !s) return s;
  } else {
    return fail("builtin trial: unknown function '" + function +
                "' (expected branin, hartmann6, sleep or curves)");
  }
  double fail_attempts = number_at(config, "fail_attempts", number_at(spec, "fail_attempts", 0));
  bool always_fail = config.is_object() && config.value("fail", false) == true;
  if (always_fail || static_cast<double>(assign.attempt) <= fail_attempts) {
    trial->error = "builtin " + function + ": failing on purpose (attempt " +
                   std::to_string(assign.attempt) + ")";
  }
  trials_[assign.lease] = std::move(trial);
  return {};
}

void BuiltinRunner::stop(const std::string& lease, StopReason reason) {
  auto it = trials_.find(lease);
  if (it != trials_.end() && !it->second->stopped) it->second->stopped = reason;
}

std::vector<TrialEvent> BuiltinRunner::poll() {
  std::vector<TrialEvent> out;
  auto now = Clock::now();
  for (auto it = trials_.begin(); it != trials_.end();) {
    Trial& t = *it->second;
    const auto& a = t.assign;
    while (!t.stopped && !t.cut_short && t.next_step <= t.steps &&
           t.step_time(t.next_step) <= now) {
      if (!t.checkpoint_dir.empty()) {
        if (auto s = write_curve_state(t.checkpoint_dir, t.next_step); !s) {
          t.error = "builtin curves: " + s.error().message;
          t.cut_short = true;
          break;
        }
      }
      out.push_back(protocol::Report{a.study,
                                     a.trial,
                                     a.attempt,
                                     a.lease,
                                     t.next_step,
                                     {{t.metric, t.value_at(t.next_step)}}});
      ++t.next_step;
    }
    bool done = t.stopped || t.cut_short || (t.next_step > t.steps && t.start + t.length <= now);
    if (!done) {
      ++it;
      continue;
    }
    protocol::Finish f{a.study, a.trial, a.attempt, a.lease, protocol::Outcome::kOk,
                       {},      "",      "",        false,   false};
    if (t.stopped) {
      f.outcome = *t.stopped == StopReason::kPruned   ? protocol::Outcome::kPruned
                  : *t.stopped == StopReason::kPaused ? protocol::Outcome::kPaused
                                                      : protocol::Outcome::kInterrupted;
      if (t.next_step > t.first_step) f.metrics[t.metric] = t.value_at(t.next_step - 1);
    } else if (!t.error.empty()) {
      f.outcome = protocol::Outcome::kFailed;
      f.error = t.error;
      f.log_tail = t.error + "\n";
    } else {
      f.metrics[t.metric] = t.curve ? t.value_at(t.steps) : t.value;
    }
    out.push_back(std::move(f));
    it = trials_.erase(it);
  }
  return out;
}

std::chrono::milliseconds BuiltinRunner::wait_hint() const {
  auto now = Clock::now();
  auto best = std::chrono::milliseconds(1000);
  for (const auto& [lease, t] : trials_) {
    auto due = t->next_step <= t->steps ? t->step_time(t->next_step) : t->start + t->length;
    if (t->stopped || t->cut_short || due <= now) return std::chrono::milliseconds(0);
    // Round up: waking a hair early would only spin.
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(due - now);
    best = std::min(best, wait);
  }
  return best;
}

std::size_t BuiltinRunner::running() const { return trials_.size(); }

}  // namespace hpo::agent
