#!/usr/bin/env bash
# Packs what the GPU machine lacks to run this machine's Swift builds there: the test binary,
# dp-train, and every shared library they load that is not part of the base system (the Swift
# runtime, Foundation with its ICU data, XCTest, OpenBLAS, Open MPI), xz-compressed to fit the
# device tool's carry limit. cuda/device/run.sh unpacks it there.
#
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
ls -la "$output/bundle.tar.xz"
