#!/usr/bin/env bash
# Instruction-count ratios of full ID-JAG validation against raw signature verification,
# per algorithm and backend, under callgrind (exact and unaffected by machine load).
# Usage: bash scripts/instruction_ratios.sh [iterations]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-500}
cargo build -q --release -p idjag-core --features josekit --example validation_cost
bin=${CARGO_TARGET_DIR:-target}/release/examples/validation_cost
count() {
    valgrind --tool=callgrind --toggle-collect='*run_loop*' --callgrind-out-file=/dev/null \
        "$bin" "$1" "$2" "$3" "$n" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
echo "| algorithm | backend | raw verify (instr/op) | full validation (instr/op) | validation overhead (instr/op) | throughput ratio |"
echo "|---|---|---|---|---|---|"
for alg in ES256 RS256 EdDSA; do
    for backend in aws-lc-rs josekit; do
        raw=$(count raw "$alg" "$backend")
        full=$(count full "$alg" "$backend")
        awk -v a="$alg" -v b="$backend" -v r="$raw" -v f="$full" -v n="$n" \
            'BEGIN { printf "| %s | %s | %d | %d | %d | %.3f |\n", a, b, r/n, f/n, (f-r)/n, r/f }'
    done
done
