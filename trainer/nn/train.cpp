// The training loop and its metric lines (see train.h); checkpoints are in checkpoint.cpp.
#include "trainer/nn/train.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "trainer/nn/checkpoint.h"
#include "trainer/nn/data.h"
#include "trainer/nn/net.h"

namespace hpo::nn {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

std::vector<int64_t> permutation(uint64_t seed, int64_t epoch, int64_t n) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + uint64_t(epoch) + 1);
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[size_t(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[size_t(i)], p[size_t(rng() % uint64_t(i + 1))]);
  return p;
}

struct Eval {
  double loss = 0, accuracy = 0;
};

Eval evaluate(Net& net, const Dataset& d, std::vector<float>& xb, std::vector<float>& yb) {
  const int64_t B = net.batch(), e = d.example_size();
  double loss = 0;
  int64_t correct = 0;
  for (int64_t start = 0; start < d.n; start += B) {
    int64_t valid = std::min(B, d.n - start);
    std::memcpy(xb.data(), d.x.data() + start * e, size_t(valid * e) * sizeof(float));
    std::memcpy(yb.data(), d.y.data() + start, size_t(valid) * sizeof(float));
    for (int64_t i = valid; i < B; ++i) yb[size_t(i)] = 0;  // padding rows: any valid class
    net.backend().upload(net.input(), xb.data());
    net.backend().upload(net.labels(), yb.data());
    loss += net.forward(valid, false, 0, &correct);
  }
  net.backend().synchronize();
  if (d.n == 0) return {};
  return {loss / double(d.n), double(correct) / double(d.n)};
}

std::string line(const json& j) { return j.dump(); }

}  // namespace

Result<RunOutcome> run_training(const TrainConfig& cfg, Backend& backend, const RunOptions& opt) {
  auto start = Clock::now();
  auto say = [&](const std::string& s) {
    if (opt.progress) opt.progress(s);
  };
  auto emit = [&](const json& j) {
    if (opt.metric) opt.metric(line(j));
  };
  // A failure caused by the input (a net that does not fit the data's shapes, a missing or
  // corrupt data file, a checkpoint of another config) keeps kInvalidInput, and `hpo train`
  // exits 2; anything that fails while training is a runtime failure (exit 1).
  auto bad_input = [&](const Error& e) { return fail(ErrorCode::kInvalidInput, e); };
  auto runtime = [&](const Error& e) { return fail(ErrorCode::kRuntime, e); };
  auto data = load_data(cfg.data);
  if (!data) return bad_input(data.error());
  const Dataset& train = data->train;
  const int64_t B = std::min(cfg.solver.batch_size, train.n);
  const int64_t steps = train.n / B;  // the last partial batch is dropped (fixed shapes)
  if (auto shapes = infer_shapes(cfg.layers, {train.c, train.h, train.w}, train.classes); !shapes)
    return bad_input(shapes.error());
  auto net = Net::build(backend, cfg.layers, {train.c, train.h, train.w}, B, train.classes);
  if (!net) return runtime(net.error());
  Net& n = **net;
  n.init_params(cfg.seed, cfg.init);
  say("hpo train: " + std::to_string(train.n) + " training, " + std::to_string(data->validation.n) +
      " validation, " + std::to_string(data->test.n) + " test examples; " +
      std::to_string(n.params().size()) + " parameter tensors on " + backend.name());

  Position pos;
  if (opt.resume && !opt.checkpoint_dir.empty()) {
    std::string changes;
    auto loaded = load_checkpoint(opt.checkpoint_dir, cfg, n, pos, &changes);
    if (!loaded) return bad_input(loaded.error());
    if (*loaded)
      say("hpo train: resumed at epoch " + std::to_string(pos.epoch + 1) + ", step " +
          std::to_string(pos.step_in_epoch) +
          (changes.empty() ? std::string() : " with a changed solver: " + changes));
  }

  const int64_t e_size = train.example_size();
  std::vector<float> xb(static_cast<size_t>(B * e_size));
  std::vector<float> yb(static_cast<size_t>(B));
  UpdateRule rule = cfg.solver.rule;
  double report_loss = 0;
  int64_t report_steps = 0;
  double last_lr = cfg.solver.lr;
  double total_train_seconds = 0;
  int64_t total_trained = 0;
  double last_train_loss = 0;

  for (; pos.epoch < cfg.solver.epochs; ++pos.epoch, pos.step_in_epoch = 0) {
    auto perm = permutation(cfg.seed, pos.epoch, train.n);
    auto epoch_start = Clock::now();
    int64_t trained = 0;
    for (; pos.step_in_epoch < steps;) {
      const int64_t s = pos.step_in_epoch;
      for (int64_t i = 0; i < B; ++i) {
        int64_t idx = perm[size_t(s * B + i)];
        std::memcpy(xb.data() + i * e_size, train.x.data() + idx * e_size,
                    size_t(e_size) * sizeof(float));
        yb[size_t(i)] = train.y[size_t(idx)];
      }
      backend.upload(n.input(), xb.data());
      backend.upload(n.labels(), yb.data());
      const double loss =
          n.forward(B, true, dropout_hash(cfg.seed, uint64_t(pos.global_step)), &pos.correct);
      n.backward();
      last_lr = learning_rate(cfg.solver, double(pos.epoch) + double(s) / double(steps));
      rule.lr = float(last_lr);
      rule.step = pos.global_step + 1;
      n.update(rule);
      pos.loss_sum += loss;
      pos.seen += B;
      trained += B;
      ++pos.step_in_epoch;
      ++pos.global_step;
      report_loss += loss / double(B);
      ++report_steps;
      if (!std::isfinite(loss))
        return fail(ErrorCode::kRuntime, "training diverged: the loss is not finite at step " +
                                             std::to_string(pos.global_step) +
                                             " (lower solver.lr?)");
      if (cfg.solver.report_every_steps > 0 &&
          pos.global_step % cfg.solver.report_every_steps == 0) {
        emit({{"step", pos.global_step},
              {"epoch", pos.epoch + 1},
              {"train_loss", report_loss / double(report_steps)},
              {"lr", last_lr}});
        report_loss = 0, report_steps = 0;
      }
      if (opt.stop && opt.stop->load()) {
        backend.synchronize();
        pos.elapsed += std::chrono::duration<double>(Clock::now() - start).count();
        if (!opt.checkpoint_dir.empty()) {
          auto st = save_checkpoint(opt.checkpoint_dir, cfg, n, pos);
          if (!st) return runtime(st.error());
          say("hpo train: stopped at epoch " + std::to_string(pos.epoch + 1) + ", step " +
              std::to_string(pos.step_in_epoch) + "; checkpoint in " + opt.checkpoint_dir);
        } else {
          say("hpo train: stopped (no --checkpoint directory, nothing saved)");
        }
        return RunOutcome::kStopped;
      }
    }
    backend.synchronize();
    double secs = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    total_train_seconds += secs;
    total_trained += trained;
    const double sps = secs > 0 ? double(trained) / secs : 0.0;
    last_train_loss = pos.seen ? pos.loss_sum / double(pos.seen) : 0.0;
    json m = {{"epoch", pos.epoch + 1},
              {"step", pos.global_step},
              {"train_loss", last_train_loss},
              {"train_accuracy", pos.seen ? double(pos.correct) / double(pos.seen) : 0.0},
              {"lr", last_lr}};
    if (data->validation.n > 0) {
      Eval v = evaluate(n, data->validation, xb, yb);
      m["val_loss"] = v.loss;
      m["val_accuracy"] = v.accuracy;
    }
    m["samples_per_sec"] = sps;
    m["elapsed"] = pos.elapsed + std::chrono::duration<double>(Clock::now() - start).count();
    emit(m);
    std::ostringstream p;
    p.precision(4);
    p << "epoch " << pos.epoch + 1 << "/" << cfg.solver.epochs << ": train loss "
      << m["train_loss"].get<double>();
    if (m.contains("val_accuracy"))
      p << ", val loss " << m["val_loss"].get<double>() << ", val accuracy "
        << m["val_accuracy"].get<double>();
    p << ", " << int64_t(sps) << " samples/s";
    say(p.str());
    pos.loss_sum = 0, pos.correct = 0, pos.seen = 0;
    if (!opt.checkpoint_dir.empty()) {
      Position next = pos;
      next.epoch += 1;
      next.step_in_epoch = 0;
      next.elapsed = m["elapsed"].get<double>();
      auto st = save_checkpoint(opt.checkpoint_dir, cfg, n, next);
      if (!st) return runtime(st.error());
    }
  }

  json f = {{"final", true}, {"epochs", cfg.solver.epochs}};
  Eval t = evaluate(n, data->test, xb, yb);
  f["test_loss"] = t.loss;
  f["test_accuracy"] = t.accuracy;
  if (data->validation.n > 0) {
    Eval v = evaluate(n, data->validation, xb, yb);
    f["val_loss"] = v.loss;
    f["val_accuracy"] = v.accuracy;
  }
  f["train_loss"] = last_train_loss;
  f["samples_per_sec"] =
      total_train_seconds > 0 ? double(total_trained) / total_train_seconds : 0.0;
  f["elapsed"] = pos.elapsed + std::chrono::duration<double>(Clock::now() - start).count();
  emit(f);
  say("hpo train: test accuracy " + std::to_string(t.accuracy));
  return RunOutcome::kFinished;
}

}  // namespace hpo::nn
