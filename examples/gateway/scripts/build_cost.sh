#!/usr/bin/env bash
# What building a gateway costs: CPU time and peak memory of `check-config` (which plans
# the file and builds the whole gateway, then exits) on a generated configuration of N
# ID-JAG routes with the same timeouts.
# Usage: bash examples/gateway/scripts/build_cost.sh [N] [path/to/idjag-gateway]
set -euo pipefail
cd "$(dirname "$0")/../../.."
n=${1:-1000}
bin=${2:-}
if [ -z "$bin" ]; then
    cargo build -q --release -p idjag-gateway
    bin="${CARGO_TARGET_DIR:-target}/release/idjag-gateway"
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
config="$dir/gateway.toml"
{
    printf '[server]\nlisten = "127.0.0.1:8080"\npublic_url = "http://127.0.0.1:8080"\n'
    printf 'allowed_origins = ["https://chat.example.com"]\n\n'
    printf '[idp]\nissuer = "https://idp.example.com"\n'
    printf 'client = { id = "mcp-gateway", secret_env = "IDJAG_GATEWAY_IDP_SECRET" }\n\n'
    printf '[audit]\noutput = "%s/audit.jsonl"\n' "$dir"
    for i in $(seq 1 "$n"); do
        printf '\n[[upstream]]\nname = "route-%d"\nurl = "https://mcp-%d.example.com/mcp"\n' "$i" "$i"
        printf 'credential = { mode = "id_jag", authorization_server = "https://as-%d.example.com", ' "$i"
        printf 'client = { id = "gateway", secret_env = "IDJAG_GATEWAY_AS_SECRET" } }\n'
        printf '[[upstream.access]]\neveryone = true\nallow = ["*"]\n'
    done
} > "$config"
IDJAG_GATEWAY_IDP_SECRET=s1 IDJAG_GATEWAY_AS_SECRET=s2 \
    /usr/bin/time -v "$bin" check-config --config "$config" 2>&1 >/dev/null \
    | grep -E 'User time|System time|Elapsed|Maximum resident'
