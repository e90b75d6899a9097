#!/usr/bin/env bash
# Instructions per MCP call, direct to the echo server and through the gateway, under
# callgrind (exact, and unchanged by the load of a shared machine). Each figure is the
# difference between a run of N2 and a run of N1 calls, divided by N2 - N1, so the setup
# (servers, keys, TLS roots, warm-up) cancels out. Every process of the topology runs in the
# one benchmark process: the count covers load generator, gateway, IdP, resource AS and
# echo server alike, so direct/gateway is the throughput ratio of a CPU-bound machine.
# The fourth argument puts the gateway's state in memory (the default) or in a redis-server the
# benchmark starts (revocations then come from the Redis-backed local replica).
# Usage: bash examples/gateway/scripts/instruction_ratio.sh [axum|rmcp] [N1] [N2] [memory|redis]
set -euo pipefail
cd "$(dirname "$0")/../../.."
upstream=${1:-axum}
n1=${2:-200}
n2=${3:-1200}
store=${4:-memory}
cargo bench -q -p idjag-gateway --features demo --bench gateway --no-run 2>/dev/null
bin=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/gateway-* | grep -v '\.d$' | head -1)
count() {
    IDJAG_BENCH_STORE=$store IDJAG_BENCH_UPSTREAM=$upstream IDJAG_BENCH_ONLY=$1 IDJAG_BENCH_REQUESTS=$2 IDJAG_BENCH_CONCURRENCY=4 \
        valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --bench 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
d1=$(count direct "$n1"); d2=$(count direct "$n2")
g1=$(count gateway "$n1"); g2=$(count gateway "$n2")
awk -v u="$upstream ($store)" -v d1="$d1" -v d2="$d2" -v g1="$g1" -v g2="$g2" -v n="$((n2 - n1))" 'BEGIN {
    d = (d2 - d1) / n; g = (g2 - g1) / n
    printf "| %s | %d | %d | %d | %.3f |\n", u, d, g, g - d, d / g
}'
