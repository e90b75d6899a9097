#!/usr/bin/env bash
# Cross-SDK interop: the official TypeScript MCP client (@modelcontextprotocol/client, pinned
# in interop/typescript/package.json) against idjag on loopback. The Rust side is
# crates/idjag-mcp/examples/protected_server.rs (idjag-idp, idjag-resource and an rmcp server
# behind idjag-mcp); the TypeScript side is interop/typescript/ema_client.mjs, which signs
# users in, runs the flow through the SDK's CrossAppAccessProvider and checks each outcome.
#
# Usage: scripts/interop_typescript.sh     (needs node/npm and cargo; IDJAG_INTEROP_PORT moves
#                                           the three ports, default 18180 to 18182)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
port="${IDJAG_INTEROP_PORT:-18180}"

(cd "$root/interop/typescript" && npm ci --no-audit --no-fund --loglevel=error)
export PATH="$root/interop/typescript/node_modules/.bin:$PATH"
(cd "$root" && cargo build --locked -p idjag-mcp --example protected_server)

log="$(mktemp)"
IDJAG_DEMO_PORT="$port" "$target_dir/debug/examples/protected_server" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
    grep -q '^MCP server' "$log" && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; echo "interop_typescript.sh: the server exited" >&2; exit 1; }
    sleep 0.1
done
grep -q '^MCP server' "$log" || { cat "$log" >&2; echo "interop_typescript.sh: the server did not start" >&2; exit 1; }

node "$root/interop/typescript/ema_client.mjs" "$port"
