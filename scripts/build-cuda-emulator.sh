#!/usr/bin/env bash
# Builds libdpcuda.so from the CUDA kernels (cuda/kernels/*.cu) for the CPU, against the runtime
# and cuBLAS of cuda/emulator/: the same ABI and the same kernel code, run by a block scheduler
# that executes every GPU thread as a fiber and checks barriers, launch limits and device
# pointers. It proves the kernels' logic (indexing, reductions, barriers, the ABI) without a GPU,
# not their speed or anything about the hardware's memory model.
#
#   scripts/build-cuda-emulator.sh                  # writes artifacts/cuda-emulator/libdpcuda.so
#   scripts/build-cuda-emulator.sh path/to/libdpcuda.so
#   DPTRAIN_CUDA_LIBRARY=artifacts/cuda-emulator/libdpcuda.so swift test -c release --filter DPCUDATests
#
#   scripts/build-cuda-emulator.sh --sanitize       # artifacts/cuda-emulator-asan/: under AddressSanitizer
#   LD_PRELOAD=$(g++ -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 \
#       DPTRAIN_CUDA_LIBRARY=artifacts/cuda-emulator-asan/libdpcuda.so swift test -c release --filter DPCUDATests
#   (a kernel that reads or writes a byte outside its allocations then stops with ASan's report:
#   compute-sanitizer's memcheck, on the CPU)
#
#   scripts/build-cuda-emulator.sh --coverage       # artifacts/cuda-emulator-coverage/: gcov counters, -O0
#   (run anything against that library, then `cd artifacts/cuda-emulator-coverage/sources &&
#   gcov -n *.cu` says how many of each kernel file's lines ran)
#
# Beside the library it builds `selftest` (cuda/emulator/selftest.cu), the emulator's own test;
# scripts/tests/check_cuda_emulator.sh runs both.
#
# Needs only g++ and OpenBLAS (scripts/setup.sh installs both).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
instrument=()
variant=cuda-emulator
case "${1:-}" in
    --sanitize) instrument=(-fsanitize=address -fno-omit-frame-pointer); variant=cuda-emulator-asan; shift ;;
    --coverage) instrument=(--coverage -O0); variant=cuda-emulator-coverage; shift ;;
esac
output="${1:-$root/artifacts/$variant/libdpcuda.so}"
build="$(dirname "$output")/sources"
selftest="$(dirname "$output")/selftest"
rm -rf "$build" "$output" "$selftest"  # a failed build leaves nothing older behind to be tested
mkdir -p "$build"
# g++ has no launch syntax: kernel<<<grid, block>>>(arguments) becomes
# dpcemu_launch(kernel, grid, block, arguments). A launch this does not rewrite fails to compile.
for source in "$root"/cuda/kernels/* "$root"/cuda/emulator/selftest.cu; do
    sed -E 's/([A-Za-z_][A-Za-z0-9_]*(<[A-Za-z0-9_]*>)?)<<<(.*)>>>\(/dpcemu_launch(\1, \3, /' "$source" \
        > "$build/$(basename "$source")"
done
flags=(-O2 "${instrument[@]}" -std=c++20 -fPIC -Wall -Wno-sign-compare -Werror -I "$root/cuda/emulator/include" -I "$root/Sources/CDPCUDA/include"
       $(pkg-config --cflags openblas))
objects=()
pids=()
for source in "$build"/*.cu "$root"/cuda/emulator/*.cpp; do
    [ "$(basename "$source")" = selftest.cu ] && continue
    object="$build/$(basename "${source%.*}").o"
    objects+=("$object")
    g++ "${flags[@]}" -x c++ -c "$source" -o "$object" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$(nproc)" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for pid in "${pids[@]}"; do wait "$pid"; done
g++ "${instrument[@]}" -shared -o "$output" "${objects[@]}" $(pkg-config --libs openblas)
g++ "${flags[@]}" -x c++ "$build/selftest.cu" -x none "$build/runtime.o" "$build/cublas.o" "$build/profile.o" -o "$selftest" \
    $(pkg-config --libs openblas)
echo "built $output: the CUDA kernels on the CPU emulator, and its self-test"
