#!/usr/bin/env bash
# Cross-SDK interop through idjag-gateway: the official MCP SDK clients sign in through the gateway of
# `idjag-gateway demo --serve` (the development IdP with its login page, a resource AS, the notes MCP server
# behind an ID-JAG route, the wiki behind a bridged route, and the gateway as its routes' authorization server).
# The clients:
# - typescript: @modelcontextprotocol/client (pinned in interop/typescript/package.json)
#   - interop/typescript/gateway_oauth.mjs: its OAuthClientProvider and auth() flow, once with a Client ID
#     Metadata Document and once with RFC 7591 registration: authorization code + PKCE through the IdP's login
#     page, tools on the ID-JAG route, a forced refresh;
#   - interop/typescript/gateway_cross_app.mjs: its CrossAppAccessProvider: an ID token from the info file
#     traded at the IdP for an ID-JAG, redeemed at the gateway (RFC 7523), a tool on the bridged route.
# - python: the `mcp` package (pinned in interop/python/requirements.txt, venv interop/python/.venv)
#   - interop/python/gateway_oauth.py: its OAuthClientProvider, the script playing the browser (the IdP's
#     login page, alice), with a Client ID Metadata Document and with RFC 7591 registration: tools on the
#     ID-JAG route, a forced refresh;
#   - interop/python/gateway_identity_assertion.py: its IdentityAssertionOAuthProvider: bob's ID token
#     traded at the IdP for an ID-JAG, redeemed at the gateway (RFC 7523), a tool on the bridged route.
# Each client prints "audit-expect <agent> <user> <upstream> <n>" lines; once the stack has stopped (SIGTERM,
# audit log flushed), its audit log must hold exactly n allowed tools/call lines naming that agent, user and
# upstream, and no other decision for that agent.
#
# Metadata documents: the SDKs accept only https client_id URLs, so this script makes a throwaway loopback CA
# and a certificate for 127.0.0.1 (openssl); clients serve their document over HTTPS with it, and the gateway
# trusts that CA through SSL_CERT_FILE (its HTTP client reads the platform's roots, rustls-native-certs), in
# this process only. The stack's test-only `allow_loopback` switch lets the gateway fetch from loopback.
#
# Usage: scripts/interop_gateway.sh [typescript|python]...   (default: every client; needs node/npm,
#        openssl, python3 with venv and cargo)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
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
    *) echo "interop_gateway.sh: unknown client $client (typescript or python)" >&2; exit 2 ;;
    esac
done
(cd "$root" && cargo build --locked -p idjag-gateway --features demo)

work="$(mktemp -d)"
stack=""
cleanup() {
    status=$?
    [ -z "$stack" ] || kill "$stack" 2>/dev/null || true
    if [ "$status" != 0 ] && [ -f "$work/stack.log" ]; then
        echo "--- the stack's log (last 80 lines)" >&2
        tail -n 80 "$work/stack.log" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# The loopback CA and the certificate clients serve their metadata documents with.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=idjag interop loopback CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$work/loopback.key" -out "$work/loopback.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$work/loopback.ext"
openssl x509 -req -in "$work/loopback.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 1 \
    -extfile "$work/loopback.ext" -out "$work/loopback.pem" 2>/dev/null

SSL_CERT_FILE="$work/ca.pem" "$target_dir/debug/idjag-gateway" demo --serve --port 0 \
    --info "$work/info.json" --audit-log "$work/audit.jsonl" >"$work/stack.log" 2>&1 &
stack=$!
for _ in $(seq 600); do
    [ -f "$work/info.json" ] && break
    kill -0 "$stack" 2>/dev/null || { cat "$work/stack.log" >&2; echo "interop_gateway.sh: the stack exited" >&2; exit 1; }
    sleep 0.1
done
[ -f "$work/info.json" ] || { cat "$work/stack.log" >&2; echo "interop_gateway.sh: no info file" >&2; exit 1; }

for client in "${clients[@]}"; do
    echo "--- $client"
    case "$client" in
    typescript)
        node="$root/interop/typescript/node_modules/.bin/node"
        "$node" "$root/interop/typescript/gateway_oauth.mjs" "$work/info.json" "$work/loopback.pem" "$work/loopback.key" \
            | tee -a "$work/clients.out"
        "$node" "$root/interop/typescript/gateway_cross_app.mjs" "$work/info.json" | tee -a "$work/clients.out"
        ;;
    python)
        python="$root/interop/python/.venv/bin/python"
        "$python" "$root/interop/python/gateway_oauth.py" "$work/info.json" "$work/loopback.pem" "$work/loopback.key" \
            | tee -a "$work/clients.out"
        "$python" "$root/interop/python/gateway_identity_assertion.py" "$work/info.json" | tee -a "$work/clients.out"
        ;;
    esac
done

# A graceful stop: the gateway drains and the audit log is flushed.
kill -TERM "$stack"
status=0
wait "$stack" || status=$?
stack=""
[ "$status" = 0 ] || { cat "$work/stack.log" >&2; echo "interop_gateway.sh: the stack exited with $status" >&2; exit 1; }

echo "--- audit log"
grep '^audit-expect ' "$work/clients.out" | python3 -c '
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1])]
for expect in sys.stdin:
    _, agent, user, upstream, count = expect.split()
    mine = [l for l in lines if l.get("agent") == agent]
    calls = [l for l in mine if l.get("method") == "tools/call" and l.get("user") == user
             and l.get("upstream") == upstream and l.get("decision") == "allow"]
    if len(calls) != int(count):
        sys.exit(f"not ok - {len(calls)} allowed tools/call lines for {agent} ({user}, {upstream}), expected {count}")
    refused = [(l.get("method"), l.get("reason")) for l in mine if l.get("decision") != "allow"]
    if refused:
        sys.exit(f"not ok - lines for {agent} that are not allowed: {refused}")
    print(f"ok - {count} tools/call audit lines name {agent} as the agent ({user} on {upstream})")
' "$work/audit.jsonl"
