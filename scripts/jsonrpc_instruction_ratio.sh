#!/usr/bin/env bash
# Instruction counts of reading a JSON-RPC body: today's lenient serde_json::from_slice::<Value>,
# idjag-core's duplicate-rejecting JSON (jose::parse_object) and the strict JSON-RPC reader
# (jsonrpc::read_message), under callgrind (exact and unaffected by machine load).
# Usage: bash scripts/jsonrpc_instruction_ratio.sh [iterations]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
cargo build -q --release -p idjag-core --example jsonrpc_cost
bin=${CARGO_TARGET_DIR:-target}/release/examples/jsonrpc_cost
count() {
    valgrind --tool=callgrind --toggle-collect='*run_loop*' --callgrind-out-file=/dev/null \
        "$bin" "$1" "$2" "$n" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
echo "| body | lenient serde_json Value (instr/msg) | duplicate-rejecting parse_object (instr/msg) | strict read_message (instr/msg) | strict / lenient |"
echo "|---|---|---|---|---|"
for body in call initialize; do
    lenient=$(count lenient "$body")
    duplicates=$(count duplicates "$body")
    strict=$(count strict "$body")
    awk -v b="$body" -v l="$lenient" -v d="$duplicates" -v s="$strict" -v n="$n" \
        'BEGIN { printf "| %s | %d | %d | %d | %.2f |\n", b, l/n, d/n, s/n, s/l }'
done
