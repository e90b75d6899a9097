#!/usr/bin/env bash
# Instruction-count ratios of the IdP token-exchange handler and the resource AS token handler
# against the crypto each cannot avoid (same keys, same run), under callgrind: exact and
# unaffected by machine load. Each bench binary runs the fixture plus a fixed number of one
# kind of operation when IDJAG_BENCH_ONLY is set; the fixture-only run is subtracted.
# Usage: bash scripts/handler_instruction_ratios.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
count() { # binary mode
    IDJAG_BENCH_ONLY=$2 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
ratio() { # label binary ops crypto-mode handler-mode
    local setup crypto handler
    setup=$(count "$2" setup); crypto=$(count "$2" "$4"); handler=$(count "$2" "$5")
    awk -v l="$1" -v s="$setup" -v c="$crypto" -v h="$handler" -v n="$3" 'BEGIN {
        printf "| %s | %d | %d | %.3f |\n", l, (c-s)/n, (h-s)/n, (c-s)/(h-s) }'
}
cargo bench -q -p idjag-idp --bench exchange --no-run
cargo bench -q -p idjag-resource --bench token_handler --no-run
idp=$(ls -t "$target"/release/deps/exchange-* | grep -v '\.d$' | head -1)
ras=$(ls -t "$target"/release/deps/token_handler-* | grep -v '\.d$' | head -1)
echo "| handler | crypto limit (instr/op) | handler (instr/op) | ratio |"
echo "|---|---|---|---|"
ratio "idjag-idp token exchange (ES256 ID-token verify + ES256 ID-JAG sign)" "$idp" 2000 crypto handler
ratio "idjag-resource JWT-bearer redemption (ES256 ID-JAG verify + ES256 access-token sign)" "$ras" 3000 raw redeem
