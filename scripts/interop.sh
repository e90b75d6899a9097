#!/usr/bin/env bash
# Cross-SDK interop: the official TypeScript and Python MCP clients against idjag on loopback.
#
# The Rust side is crates/idjag-mcp/examples/protected_server.rs: idjag-idp as the enterprise
# IdP, idjag-resource as the MCP server's authorization server and an rmcp server behind
# idjag-mcp. The clients:
# - interop/typescript/ema_client.mjs: @modelcontextprotocol/client (pinned in package.json),
#   its CrossAppAccessProvider running both legs, a step-up and the IdP's refusals;
# - interop/python/ema_client.py: the `mcp` package (pinned in requirements.txt), its
#   IdentityAssertionOAuthProvider running leg 2 with both client authentication methods,
#   a refused step-up and a replayed ID-JAG.
# Each checks the exact requests the SDK sent and every outcome, and exits non-zero on the
# first failure.
#
# Usage: scripts/interop.sh [typescript|python]...   (default: both; needs node/npm, python3
#        >= 3.10 and cargo; IDJAG_INTEROP_PORT moves the three ports, default 18180 to 18182)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
port="${IDJAG_INTEROP_PORT:-18180}"
clients=("$@")
[ ${#clients[@]} -gt 0 ] || clients=(typescript python)

for client in "${clients[@]}"; do
    case "$client" in
    typescript) (cd "$root/interop/typescript" && npm ci --no-audit --no-fund --loglevel=error) ;;
    python)
        venv="$root/interop/python/.venv"
        [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/interop/python/requirements.txt"
        ;;
    *) echo "interop.sh: unknown client $client (typescript or python)" >&2; exit 2 ;;
    esac
done
(cd "$root" && cargo build --locked -p idjag-mcp --example protected_server)

log="$(mktemp)"
IDJAG_DEMO_PORT="$port" "$target_dir/debug/examples/protected_server" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
    grep -q '^MCP server' "$log" && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; echo "interop.sh: the server exited" >&2; exit 1; }
    sleep 0.1
done
grep -q '^MCP server' "$log" || { cat "$log" >&2; echo "interop.sh: the server did not start" >&2; exit 1; }

for client in "${clients[@]}"; do
    echo "--- $client"
    case "$client" in
    typescript) "$root/interop/typescript/node_modules/.bin/node" "$root/interop/typescript/ema_client.mjs" "$port" ;;
    python) "$root/interop/python/.venv/bin/python" "$root/interop/python/ema_client.py" "$port" ;;
    esac
done
