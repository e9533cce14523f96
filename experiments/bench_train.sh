#!/usr/bin/env bash
# Training throughput and accuracy of `hpo train` beside PyTorch, same machine, same run:
# Fashion-MNIST, 2 epochs, batch 128, SGD lr 0.05 momentum 0.9, the same normalization,
# MLP 784-512-256-10 and CNN conv5x5x32-pool2-conv5x5x64-pool2-dense128-10 ("same" padding).
# Samples/s count training steps only (no evaluation), on both sides.
#
# The peer runs as its users run it: PyTorch on OpenBLAS. Debian's torch links the generic
# libblas.so.3, which is the slow reference BLAS unless an optimized one is installed, so this
# benchmark needs
#     apt-get install libopenblas0-pthread
# (it then becomes the libblas.so.3-x86_64-linux-gnu alternative). Without it the script says
# so, still measures both sides, and prints "ratio: n/a (peer on reference BLAS)": a ratio
# against a crippled peer is worse than none. The results file names the peer's torch version,
# threads and the BLAS library its process actually loaded, and the load average.
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

# Which BLAS the peer will get, before spending minutes on it.
blas_alt=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null |
  sed -n 's/^Value: //p')
blas_alt=${blas_alt:-unknown}
echo '{}' > "$tmp/torch_config.json"
if [[ -z ${SKIP_TORCH:-} ]]; then
  if [[ $blas_alt != *openblas* ]]; then
    cat >&2 <<EOF
bench_train: OpenBLAS is missing or not selected: libblas.so.3 is $blas_alt.
  PyTorch would run on the reference BLAS, which is not how its users run it. Install it:
      apt-get install libopenblas0-pthread
  (or select it: update-alternatives --config libblas.so.3-x86_64-linux-gnu).
  Measuring anyway; no ratio will be printed.
EOF
  fi
  "$PYTHON" experiments/bench_train_torch.py --model mlp --threads "$THREADS" --config-only \
    > "$tmp/torch_config.json" || echo '{}' > "$tmp/torch_config.json"
fi
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
  "$TRAIN_LIMIT" "$blas_alt" "$HPO" <<'PY' | tee "$RESULTS"
import json, sys, time
tmp, device, threads, lb, la, models, epochs, limit, blas_alt, hpo = sys.argv[1:11]
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
print(f"device {device}, {threads} threads, CPU {cpu}, {time.strftime('%Y-%m-%d', time.gmtime())}")
print(f"load average (/proc/loadavg, 1/5/15 min) before {lb}, after {la}")
peer = json.load(open(f"{tmp}/torch_config.json"))
# The peer's own report on the BLAS it loaded wins over the alternative's name.
on_reference = peer.get("blas", "reference") == "reference" if peer else "openblas" not in blas_alt
if peer:
    bt = peer.get("blas_threads")
    print(f"peer: PyTorch {peer.get('torch')}, torch.get_num_threads() {peer.get('threads')}, "
          f"interop {peer.get('interop_threads')}, BLAS {peer.get('blas')} "
          f"({peer.get('blas_library') or '?'}{f', {bt} threads' if bt else ''}), "
          f"mkldnn {peer.get('mkldnn')}")
    print(f"      libblas.so.3 alternative: {blas_alt}; torch built with {peer.get('built_with')}")
    print(f"      parallel_info: {'; '.join(peer.get('parallel_info', []))}")
else:
    print(f"peer: not run (libblas.so.3 alternative: {blas_alt})")
if on_reference and peer:
    print("ratio: n/a (peer on reference BLAS; apt-get install libopenblas0-pthread and rerun)")
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
    ratio = f"{o / t:6.2f}" if t and not on_reference else "   n/a"
    ta = f"{torch['test_accuracy'] * 100:14.2f}%" if t else f"{'n/a':>15}"
    print(f"{m:5} {o:15.0f} {t:16.0f} {ratio} {ours.get('test_accuracy', 0) * 100:13.2f}% {ta} "
          f"{o * flops[m] / 1e9:13.1f}")
print(f"command: EPOCHS={epochs} TRAIN_LIMIT={limit} THREADS={threads} "
      f"experiments/bench_train.sh {hpo}")
print("GFLOP/s = training FLOPs per sample (fwd + bwd data + bwd weights) x samples/s; "
      "both sides use PyTorch's default init.")
PY
echo "written to $RESULTS" >&2
