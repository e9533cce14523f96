#!/usr/bin/env bash
# Training throughput and accuracy of `hpo train` beside PyTorch, same machine, same run:
# Fashion-MNIST, 2 epochs, batch 128, SGD lr 0.05 momentum 0.9, the same normalization,
# MLP 784-512-256-10 and CNN conv5x5x32-pool2-conv5x5x64-pool2-dense128-10 ("same" padding).
# Samples/s count training steps only (no evaluation), on both sides.
#
# usage: experiments/bench_train.sh [HPO_BINARY]     (default: build/hpo)
#   THREADS=2 DEVICE=cpu RESULTS=experiments/results/train.txt PYTHON=/usr/bin/python3
#   MODELS="mlp cnn"  SKIP_TORCH=1 (ours only)
#   EPOCHS=N TRAIN_LIMIT=N: a shorter run on both sides (for a busy machine; the reference
#   figures are the defaults: 2 epochs on all 60000 training images)
set -euo pipefail
cd "$(dirname "$0")/.."
HPO=${1:-${HPO:-build/hpo}}
THREADS=${THREADS:-2}
DEVICE=${DEVICE:-cpu}
PYTHON=${PYTHON:-/usr/bin/python3}
RESULTS=${RESULTS:-experiments/results/train.txt}
MODELS=${MODELS:-mlp cnn}
TORCH_DEVICE=cpu
[[ $DEVICE == cuda* ]] && TORCH_DEVICE=cuda

EPOCHS=${EPOCHS:-2}
TRAIN_LIMIT=${TRAIN_LIMIT:-0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for m in $MODELS; do
  echo "== $m: hpo train ($DEVICE, $THREADS threads)" >&2
  "$PYTHON" -c "import json,sys; c=json.load(open(sys.argv[1])); c['solver']['epochs']=$EPOCHS; \
c['data']['train_limit']=$TRAIN_LIMIT; json.dump(c, open(sys.argv[2], 'w'))" \
    "experiments/bench_train/$m.json" "$tmp/$m.json"
  "$HPO" train --config "$tmp/$m.json" --device "$DEVICE" --threads "$THREADS" \
    > "$tmp/ours_$m.jsonl"
  if [[ -z ${SKIP_TORCH:-} ]]; then
    echo "== $m: PyTorch ($TORCH_DEVICE, $THREADS threads)" >&2
    "$PYTHON" experiments/bench_train_torch.py --model "$m" --threads "$THREADS" \
      --device "$TORCH_DEVICE" --epochs "$EPOCHS" --train-limit "$TRAIN_LIMIT" \
      > "$tmp/torch_$m.json" || echo '{}' > "$tmp/torch_$m.json"
  else
    echo '{}' > "$tmp/torch_$m.json"
  fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$PYTHON" - "$tmp" "$DEVICE" "$THREADS" "$load_before" "$load_after" "$MODELS" "$EPOCHS" \
  "$TRAIN_LIMIT" <<'PY' | tee "$RESULTS"
import json, sys
tmp, device, threads, lb, la, models, epochs, limit = sys.argv[1:9]
# Training FLOPs per sample (fwd + backward data + backward weights; the first layer has no
# backward data). CNN: conv1 1x28x28 -> 32, conv2 32x14x14 -> 64 (5x5, pad 2), 3136-128-10.
conv1 = 2 * 28 * 28 * 32 * 25
conv2 = 2 * 14 * 14 * 64 * 32 * 25
flops = {"cnn": 2 * conv1 + 3 * conv2 + 3 * 2 * 3136 * 128 + 3 * 2 * 128 * 10,
         "mlp": 2 * 2 * 784 * 512 + 3 * 2 * 512 * 256 + 3 * 2 * 256 * 10}
cpu = "?"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip(); break
except OSError:
    pass
train = "all 60000" if limit == "0" else f"the first {limit}"
print(f"hpo train vs PyTorch: Fashion-MNIST ({train} training images), {epochs} epochs, "
      f"batch 128, SGD lr 0.05 momentum 0.9")
print(f"device {device}, {threads} threads, CPU {cpu}, load average before {lb}, after {la}")
print(f"{'net':5} {'ours samples/s':>15} {'torch samples/s':>16} {'ratio':>6} "
      f"{'ours test acc':>14} {'torch test acc':>15} {'ours GFLOP/s':>13}")
for m in models.split():
    ours = {}
    for line in open(f"{tmp}/ours_{m}.jsonl"):
        j = json.loads(line)
        if j.get("final"):
            ours = j
    torch = json.load(open(f"{tmp}/torch_{m}.json"))
    o, t = ours.get("samples_per_sec", 0), torch.get("samples_per_sec", 0)
    ratio = f"{o / t:6.2f}" if t else "   n/a"
    ta = f"{torch['test_accuracy'] * 100:14.2f}%" if t else f"{'n/a':>15}"
    print(f"{m:5} {o:15.0f} {t:16.0f} {ratio} {ours.get('test_accuracy', 0) * 100:13.2f}% {ta} "
          f"{o * flops[m] / 1e9:13.1f}")
PY
echo "written to $RESULTS" >&2
