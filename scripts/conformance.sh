#!/usr/bin/env bash
# Runs the public MCP conformance suite (@modelcontextprotocol/conformance, pinned in
# conformance/package.json):
#
# 1. client part: against idjag-mcp's conformance client, the client scenario
#    auth/enterprise-managed-authorization on each MCP wire revision we support;
# 2. server part: every server scenario of each revision the suite knows (2025-03-26,
#    2025-06-18, 2025-11-25 and the stateless 2026-07-28; `--suite all --spec-version REV`),
#    once direct against our conformance server (conformance/server, on rmcp) and once through
#    `idjag-gateway serve` with a route in front of it (conformance/gateway.toml), then
#    compares the two (conformance/compare-server-runs.mjs).
#
# Usage: scripts/conformance.sh            (from anywhere; needs node/npm and cargo)
#
# - `npm ci` installs the suite, and Node 22 (the `node` package; the suite needs >= 22), into
#   conformance/node_modules (gitignored); nothing of the suite is committed.
# - Results land in $CONFORMANCE_OUT (default: conformance-results/, gitignored): the client
#   runs at the top, the server runs under server/{direct,gateway}/REVISION, with the
#   servers' logs and the gateway's audit lines in server/.
# - Everything listens on 127.0.0.1 and is stopped by a trap when the script ends.
# - Exits non-zero if a client check is not SUCCESS/INFO, or if on any revision a server
#   scenario fails direct, or its checks (id and status of each) differ through the gateway.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${CONFORMANCE_OUT:-$root/conformance-results}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
scenario="auth/enterprise-managed-authorization"

(cd "$root/conformance" && npm ci --no-audit --no-fund --loglevel=error)
export PATH="$root/conformance/node_modules/.bin:$PATH"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 22 ]; then
    echo "conformance.sh: the suite needs Node >= 22, found $(node --version)" >&2
    exit 2
fi

(cd "$root" && cargo build --locked -p idjag-mcp --example conformance_client)
client="$target_dir/debug/examples/conformance_client"
case "$client" in
*" "*)
    # The suite splits --command on spaces.
    echo "conformance.sh: the client path must not contain spaces: $client" >&2
    exit 2
    ;;
esac

rm -rf "$out"
failed=0
run() {
    local name="$1"
    shift
    echo "== $scenario ($name)"
    if ! conformance client --command "$client" --scenario "$scenario" -o "$out/$name" "$@"; then
        failed=1
    fi
}

run default
run 2025-06-18 --spec-version 2025-06-18 --force
run 2025-11-25 --spec-version 2025-11-25 --force
run 2026-07-28 --spec-version 2026-07-28 --force

# Belt and braces: every check of every run must be SUCCESS or INFO.
if ! node - "$out" <<'EOF'; then failed=1; fi
const fs = require("fs");
const path = require("path");
const walk = (dir) => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
  e.isDirectory() ? walk(path.join(dir, e.name)) : e.name === "checks.json" ? [path.join(dir, e.name)] : []);
const files = walk(process.argv[2]);
let bad = 0, passed = 0;
for (const file of files) {
  for (const check of JSON.parse(fs.readFileSync(file, "utf8"))) {
    if (check.status === "SUCCESS") passed++;
    else if (check.status !== "INFO") { bad++; console.error(`${file}: ${check.id} ${check.status}`); }
  }
}
console.log(`conformance: ${files.length} runs, ${passed} checks passed, ${bad} not passed`);
process.exit(files.length === 4 && bad === 0 ? 0 : 1);
EOF

# ---- Server part.
(cd "$root" && cargo build --locked -p idjag-conformance-server -p idjag-gateway)
server_out="$out/server"
mkdir -p "$server_out"
pids=()
stop() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
}
trap stop EXIT

free_port() {
    node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
# Waits until 127.0.0.1:$1 accepts connections (at most 60 s), or fails naming $2.
wait_for() {
    for _ in $(seq 600); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "conformance.sh: $2 did not start on 127.0.0.1:$1" >&2
    exit 2
}

server_port="$(free_port)"
idp_port="$(free_port)"
front_port="$(free_port)"
gateway_port="$(free_port)"

"$target_dir/debug/idjag-conformance-server" "127.0.0.1:$server_port" \
    >"$server_out/server.log" 2>&1 &
pids+=($!)
node "$root/conformance/gateway-front.mjs" "$idp_port" "$front_port" "$gateway_port" \
    idjag-gateway-conformance >"$server_out/front.log" 2>&1 &
pids+=($!)
wait_for "$server_port" "the conformance server"
wait_for "$idp_port" "the IdP of gateway-front.mjs"
(
    cd "$server_out"
    IDJAG_GATEWAY__SERVER__LISTEN="127.0.0.1:$gateway_port" \
    IDJAG_GATEWAY__SERVER__PUBLIC_URL="http://127.0.0.1:$front_port" \
    IDJAG_GATEWAY__SERVER__ALLOWED_ORIGINS="[\"http://127.0.0.1:$front_port\"]" \
    IDJAG_GATEWAY__IDP__ISSUER="http://127.0.0.1:$idp_port" \
    IDJAG_GATEWAY__IDP__JWKS_URI="http://127.0.0.1:$idp_port/jwks" \
    IDJAG_GATEWAY__IDP__TOKEN_ENDPOINT="http://127.0.0.1:$idp_port/token" \
    IDJAG_GATEWAY__UPSTREAM__0__URL="http://127.0.0.1:$server_port/mcp" \
    IDJAG_CONFORMANCE_IDP_SECRET=unused-the-route-needs-no-token-exchange \
    IDJAG_CONFORMANCE_UPSTREAM_KEY=conformance-upstream-key \
        exec "$target_dir/debug/idjag-gateway" serve --config "$root/conformance/gateway.toml"
) >"$server_out/gateway.log" 2>&1 &
pids+=($!)
wait_for "$gateway_port" "idjag-gateway"
wait_for "$front_port" "the front door of gateway-front.mjs"

revisions=(2025-03-26 2025-06-18 2025-11-25 2026-07-28)
for revision in "${revisions[@]}"; do
    for side in direct gateway; do
        case "$side" in
        direct) url="http://127.0.0.1:$server_port/mcp" ;;
        gateway) url="http://127.0.0.1:$front_port/mcp/conformance" ;;
        esac
        echo "== server scenarios, $revision, $side"
        # The exit code only says whether a scenario failed: compare-server-runs.mjs judges.
        conformance server --url "$url" --suite all --spec-version "$revision" \
            -o "$server_out/$side/$revision" >"$server_out/$side-$revision.log" 2>&1 || true
    done
done
if ! node "$root/conformance/compare-server-runs.mjs" "$server_out" "${revisions[@]}"; then
    failed=1
fi

exit "$failed"
