#!/usr/bin/env bash
# On a machine with a GPU: runs the CUDA backend tests and the training benchmark on the GPU from
# an already built bundle (experiments/gpu/pack.sh), and prints PyTorch's figures on the same GPU
# beside ours when PyTorch is installed. Everything within 8 minutes (7.5 of checks, then it stops). Needs no compiler, no
# package registry and no -dev packages: the binaries and their libraries come from the bundle;
# cuDNN and cuBLAS come from the CUDA libraries present (a PyTorch installation's nvidia/*
# wheels or torch/lib, or /usr/local/cuda).
#
# usage: experiments/gpu/run_gpu_checks.sh [BUNDLE_DIR]       (default: bundle/ beside this script)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bundle=${1:-$here/bundle}
deadline=$((SECONDS + 450))
left() { echo $((deadline - SECONDS)); }
PYTHON=${PYTHON:-python3}

# The binaries and their libraries travel as one archive (pack.sh): unpack it once beside /tmp.
bin=$bundle/bin
if [[ -f $bundle/payload.tar.xz ]]; then
  unpacked=${TMPDIR:-/tmp}/hpo-gpu-bundle
  rm -rf "$unpacked" && mkdir -p "$unpacked"
  tar -C "$unpacked" -xJf "$bundle/payload.tar.xz" || { echo "cannot unpack $bundle/payload.tar.xz"; exit 1; }
  bin=$unpacked/bin
  libdir=$unpacked/lib
else
  libdir=$bundle/lib
fi
libs="$libdir:$bin"   # bin: libhpo_cuda.so, which test_cuda links directly
if command -v "$PYTHON" >/dev/null && "$PYTHON" -c "import torch" 2>/dev/null; then
  extra=$("$PYTHON" - <<'PY'
import glob, os, site, torch
dirs = [os.path.join(os.path.dirname(torch.__file__), "lib")]
for sp in site.getsitepackages() + [site.getusersitepackages()]:
    dirs += glob.glob(os.path.join(sp, "nvidia", "*", "lib"))
print(":".join(d for d in dirs if os.path.isdir(d)))
PY
)
  libs="$libs:$extra"
  have_torch=1
else
  have_torch=
fi
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/lib/x86_64-linux-gnu; do
  [[ -d $d ]] && libs="$libs:$d"
done
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi not found"
echo "== libraries the binaries cannot find (should be none)"
ldd "$bin/hpo" "$bin/test_cuda" 2>/dev/null | grep "not found" || echo "none"

echo "== CUDA backend tests"
if [[ -x $bin/test_cuda ]]; then
  timeout $(( $(left) > 240 ? 240 : $(left) )) "$bin/test_cuda" --durations yes 2>&1 | tail -40
  echo "test_cuda exit code: ${PIPESTATUS[0]}"
else
  echo "no test_cuda in $bin"
fi

echo "== benchmark on the GPU (Fashion-MNIST, 2 epochs, batch 128, SGD lr 0.05 momentum 0.9)"
printf "%-5s %-8s %15s %12s\n" net who samples/s test_acc
for m in mlp cnn; do
  cfg=$(mktemp)
  sed "s#/usr/share/datasets/fashion-mnist#$bundle/data#" "$bundle/bench_train/$m.json" > "$cfg"
  line=$(timeout $(( $(left) > 10 ? $(left) / 2 : 5 )) "$bin/hpo" train --config "$cfg" \
           --device cuda:0 2>/tmp/hpo_gpu_$m.err | grep '"final"')
  if [[ -n $line ]]; then
    echo "$line" | "${PYTHON}" -c "import json,sys; j=json.loads(sys.stdin.read()); print('%-5s %-8s %15.0f %11.2f%%' % ('$m','hpo',j['samples_per_sec'],100*j['test_accuracy']))" 2>/dev/null || echo "$m hpo: $line"
  else
    echo "$m hpo: failed: $(tail -3 /tmp/hpo_gpu_$m.err)"
  fi
  if [[ -n $have_torch ]] && (( $(left) > 20 )); then
    timeout $(( $(left) / 2 )) "$PYTHON" "$bundle/bench_train_torch.py" --model $m --device cuda \
      --data "$bundle/data" 2>/dev/null | "$PYTHON" -c "import json,sys; j=json.loads(sys.stdin.read()); print('%-5s %-8s %15.0f %11.2f%%' % ('$m','pytorch',j['samples_per_sec'],100*j['test_accuracy']))" \
      || echo "$m pytorch: failed"
  fi
  rm -f "$cfg"
done
echo "== done in ${SECONDS}s"
