#!/usr/bin/env bash
# Packs what experiments/gpu/run_gpu_checks.sh needs into a folder beside it (default
# experiments/gpu/bundle): the built hpo and test_cuda, the shared libraries they load from this
# machine (except the C library, the CUDA driver, cuDNN and cuBLAS, which the GPU machine
# provides, e.g. from a PyTorch installation), the benchmark configs and Fashion-MNIST.
#
# usage: experiments/gpu/pack.sh [BUILD_DIR] [OUT_DIR]      (defaults: build, experiments/gpu/bundle)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
out=${2:-$here/bundle}
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/bench_train" "$out/data"
cp "$build/hpo" "$out/bin/"
# The CUDA backend is a module beside hpo (trainer/nn/cuda/registration.h), loaded on first use.
[[ -f $build/libhpo_cuda.so ]] && cp "$build/libhpo_cuda.so" "$out/bin/" ||
  echo "pack: no libhpo_cuda.so in $build (HPO_CUDA off?)" >&2
test_cuda=$(find "$build" -name test_cuda -type f -perm -u+x | head -1)
[[ -n $test_cuda ]] && cp "$test_cuda" "$out/bin/" || echo "pack: no test_cuda in $build (HPO_CUDA off?)" >&2
for exe in "$out"/bin/*; do  # hpo, libhpo_cuda.so, test_cuda
  ldd "$exe" | awk '/=> \// {print $3}' | while read -r lib; do
    case $(basename "$lib") in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libcuda.so*|libcudnn*|libcublas*) ;;
      *) cp -nL "$lib" "$out/lib/" ;;
    esac
  done
done
cp "$root"/experiments/bench_train/*.json "$out/bench_train/"
cp "$root/experiments/bench_train_torch.py" "$out/"
cp /usr/share/datasets/fashion-mnist/*.gz "$out/data/"
du -sh "$out" >&2
