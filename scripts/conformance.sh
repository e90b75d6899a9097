#!/usr/bin/env bash
# Runs the public MCP conformance suite (@modelcontextprotocol/conformance, pinned in
# conformance/package.json) against idjag-mcp's conformance client, for the client scenario
# auth/enterprise-managed-authorization on each MCP wire revision we support.
#
# Usage: scripts/conformance.sh            (from anywhere; needs node/npm and cargo)
#
# - `npm ci` installs the suite, and Node 22 (the `node` package; the suite needs >= 22), into
#   conformance/node_modules (gitignored); nothing of the suite is committed.
# - Results land in $CONFORMANCE_OUT (default: conformance-results/, gitignored), one
#   directory per run with checks.json and the client's stdout/stderr.
# - Exits non-zero if the suite reports a failure, or if any check is not SUCCESS/INFO.
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

exit "$failed"
