#!/usr/bin/env bash
# Instructions per MCP call, direct to the echo server and through the gateway, under
# callgrind (exact, and unchanged by the load of a shared machine). Each figure is the
# difference between a run of N2 and a run of N1 calls, divided by N2 - N1, so the setup
# (servers, keys, TLS roots, warm-up) cancels out. Every process of the topology runs in the
# one benchmark process: the count covers load generator, gateway, IdP, resource AS and
# echo server alike, so direct/gateway is the throughput ratio of a CPU-bound machine.
#
# Mode switch: `tracing` as the first argument counts the gateway path only, with telemetry
# off (no subscriber), on (spans and trace ids, no exporter) and exporting over OTLP/HTTP to a
# collector in the same process, and prints each against off.
#
# Mode switch: `inbound` as the first argument turns on the gateway's own authorization server
# and counts the direct call, the gateway path with a gateway access token and the gateway path
# with the user's IdP ID token (axum echo), and prints each gateway path against the direct call.
#
# The fourth argument puts the gateway's state in memory (the default) or in a redis-server the
# benchmark starts (revocations then come from the Redis-backed local replica).
#
# IDJAG_BENCH_BIN names a benchmark binary built elsewhere (scripts/compare_builds.sh builds one
# per revision); without it the script builds this checkout's.
#
# Usage: bash examples/gateway/scripts/instruction_ratio.sh [axum|rmcp] [N1] [N2] [memory|redis]
#        bash examples/gateway/scripts/instruction_ratio.sh tracing [N1] [N2] [memory|redis]
#        bash examples/gateway/scripts/instruction_ratio.sh inbound [N1] [N2] [memory|redis]
set -euo pipefail
cd "$(dirname "$0")/../../.."
upstream=${1:-axum}
n1=${2:-200}
n2=${3:-1200}
store=${4:-memory}
if [ -n "${IDJAG_BENCH_BIN:-}" ]; then
    bin=$IDJAG_BENCH_BIN
else
    cargo bench -q -p idjag-gateway --features demo --bench gateway --no-run 2>/dev/null
    bin=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/gateway-* | grep -v '\.d$' | head -1)
fi
tracing=off
inbound=""
count() {
    env ${inbound:+IDJAG_BENCH_INBOUND=$inbound} IDJAG_BENCH_STORE=$store IDJAG_BENCH_UPSTREAM=${bench_upstream:-$upstream} \
        IDJAG_BENCH_ONLY=$1 IDJAG_BENCH_REQUESTS=$2 IDJAG_BENCH_CONCURRENCY=4 IDJAG_BENCH_TRACING=$tracing \
        valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --bench 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
if [ "$upstream" = tracing ]; then
    bench_upstream=axum
    echo "| telemetry | instructions per call (gateway path) | vs off |"
    echo "|---|---|---|"
    base=""
    for tracing in off on otlp; do
        a=$(count gateway "$n1"); b=$(count gateway "$n2")
        per=$(( (b - a) / (n2 - n1) ))
        [ -z "$base" ] && base=$per
        awk -v m="$tracing" -v p="$per" -v b="$base" 'BEGIN { printf "| %s | %d | %+.1f %% |\n", m, p, (p - b) * 100 / b }'
    done
    exit 0
fi
if [ "$upstream" = inbound ]; then
    bench_upstream=axum
    inbound=id_token
    d1=$(count direct "$n1"); d2=$(count direct "$n2")
    echo "| inbound credential | direct | through the gateway | gateway's share | direct / gateway |"
    echo "|---|---|---|---|---|"
    for inbound in gateway_token id_token; do
        g1=$(count gateway "$n1"); g2=$(count gateway "$n2")
        awk -v m="$inbound" -v d1="$d1" -v d2="$d2" -v g1="$g1" -v g2="$g2" -v n="$((n2 - n1))" 'BEGIN {
            d = (d2 - d1) / n; g = (g2 - g1) / n
            printf "| %s | %d | %d | %d | %.3f |\n", m, d, g, g - d, d / g
        }'
    done
    exit 0
fi
d1=$(count direct "$n1"); d2=$(count direct "$n2")
g1=$(count gateway "$n1"); g2=$(count gateway "$n2")
awk -v u="$upstream ($store)" -v d1="$d1" -v d2="$d2" -v g1="$g1" -v g2="$g2" -v n="$((n2 - n1))" 'BEGIN {
    d = (d2 - d1) / n; g = (g2 - g1) / n
    printf "| %s | %d | %d | %d | %.3f |\n", u, d, g, g - d, d / g
}'
