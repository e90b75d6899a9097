#!/usr/bin/env bash
# Instructions per request at the gateway's token endpoint, in process through its router
# (benches/authorization_server.rs), against the crypto floor (one ES256 sign + one verify)
# counted in the same run, under callgrind (exact, and unchanged by the load of a shared
# machine). Only the function `measured` is counted (the calling thread, which runs the router);
# the inputs (codes from sign-ins, ID-JAGs from the IdP) are made before it. Each figure is the
# difference between a run of N2 and a run of N1 operations, divided by N2 - N1.
#
# Usage: bash examples/gateway/scripts/as_instruction_ratio.sh [N1] [N2]
set -euo pipefail
cd "$(dirname "$0")/../../.."
n1=${1:-20}
n2=${2:-120}
bin=$(cargo bench -q -p idjag-gateway --features demo --bench authorization_server --no-run \
    --message-format=json 2>/dev/null | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "authorization_server" and m.get("executable"):
        print(m["executable"])')
count() {
    IDJAG_BENCH_ONLY=$1 IDJAG_BENCH_REQUESTS=$2 \
        valgrind --tool=callgrind --toggle-collect='*measured*' --callgrind-out-file=/dev/null "$bin" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
per() { local a b; a=$(count "$1" "$n1"); b=$(count "$1" "$n2"); echo $(( (b - a) / (n2 - n1) )); }
floor=$(per raw)
echo "| request | instructions | crypto floor (ES256 sign + verify) | floor / request |"
echo "|---|---|---|---|"
for kind in code refresh id_jag; do
    awk -v k="$kind" -v p="$(per "$kind")" -v f="$floor" 'BEGIN { printf "| %s | %d | %d | %.3f |\n", k, p, f, f / p }'
done
