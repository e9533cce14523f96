#!/usr/bin/env bash
# Packs what experiments/gpu/run_gpu_checks.sh needs into a folder beside it (default
# experiments/gpu/bundle): the built hpo and test_cuda, the shared libraries they load from this
# machine (except the C library, the CUDA driver, cuDNN and cuBLAS, which the GPU machine
# provides, e.g. from a PyTorch installation), the benchmark configs and Fashion-MNIST.
# A device run carries at most 64 MiB, and oneDNN alone is 40 MB: the binaries (stripped) and
# their libraries travel as one xz archive (payload.tar.xz, unpacked by run_gpu_checks.sh), the
# data as the .gz files Debian ships. The bundle must stay under 60 MiB; pack fails if it is not.
#
# usage: experiments/gpu/pack.sh [BUILD_DIR] [OUT_DIR]      (defaults: build, experiments/gpu/bundle)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
out=${2:-$here/bundle}
rm -rf "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$out/bench_train" "$out/data"
cp "$build/hpo" "$stage/bin/"
# The CUDA backend is a module beside hpo (trainer/nn/cuda/registration.h), loaded on first use.
[[ -f $build/libhpo_cuda.so ]] && cp "$build/libhpo_cuda.so" "$stage/bin/" ||
  echo "pack: no libhpo_cuda.so in $build (HPO_CUDA off?)" >&2
test_cuda=$(find "$build" -name test_cuda -type f -perm -u+x | head -1)
[[ -n $test_cuda ]] && cp "$test_cuda" "$stage/bin/" || echo "pack: no test_cuda in $build (HPO_CUDA off?)" >&2
for exe in "$stage"/bin/*; do  # hpo, libhpo_cuda.so, test_cuda
  ldd "$exe" | awk '/=> \// {print $3}' | while read -r lib; do
    case $(basename "$lib") in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libcuda.so*|libcudnn*|libcublas*) ;;
      *) cp -nL "$lib" "$stage/lib/" ;;
    esac
  done
done
cp "$root"/experiments/bench_train/*.json "$out/bench_train/"
cp "$root/experiments/bench_train_torch.py" "$out/"
cp /usr/share/datasets/fashion-mnist/*.gz "$out/data/"
strip --strip-unneeded "$stage"/bin/* "$stage"/lib/* 2>/dev/null || true
tar -C "$stage" -cf - bin lib | xz -T0 -6 > "$out/payload.tar.xz"
mib=$(( $(du -sb "$out" | cut -f1) / 1048576 ))
echo "pack: $out is $mib MiB (limit 60)" >&2
(( mib < 60 )) || { echo "pack: the bundle is over 60 MiB; a device run carries 64 MiB at most" >&2; exit 1; }
