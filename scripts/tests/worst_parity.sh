#!/usr/bin/env bash
# The N largest normalised errors among the `parity ...: normalised error E over K elements`
# lines that DPCUDATests prints (Tests/DPCUDATests/CUDATestSupport.swift), worst last. fp32 lines
# are held to 1e-6 (slices 1e-5), the tf32 and bf16 ones to their own bounds, so each mode is
# ranked apart.
#
#   bash scripts/tests/worst_parity.sh tests.log fp32|rounded [N, default 3]
set -euo pipefail
log="${1:?usage: worst_parity.sh LOG fp32|rounded [N]}"
mode="${2:?usage: worst_parity.sh LOG fp32|rounded [N]}"
count="${3:-3}"
case "$mode" in
    fp32) select=(grep -vE "^parity (tf32|bf16) ") ;;
    rounded) select=(grep -E "^parity (tf32|bf16) ") ;;
    *) echo "worst_parity.sh: mode $mode is neither fp32 nor rounded" >&2; exit 2 ;;
esac
grep -E "^parity .*normalised error" "$log" | { "${select[@]}" || true; } |
    awk '{ for (i = 1; i < NF; i++) if ($i == "error") print $(i + 1) "\t" $0 }' | sort -g | tail -n "$count" | cut -f2-
