#!/usr/bin/env bash
# Cross-SDK interop: three MCP clients written by others run the ID-JAG flow against the servers
# idjag ships, each started as its own process from the configuration files in interop/stack/:
#
# - the upstream OpenID provider: oauth2-mock-server (npm, pinned in interop/oidc-mock), where
#   the user signs in for an ID token;
# - bins/idjag-issuer (interop/stack/issuer.toml, policy.toml), bridging that provider: the ID
#   token is traded for an ID-JAG (RFC 8693);
# - bins/idjag-resource-server (interop/stack/resource-server.toml): the ID-JAG is redeemed for
#   an access token (RFC 7523);
# - crates/idjag-mcp/examples/mcp_server.rs: an rmcp server behind McpAuth accepting only that
#   resource server's access tokens, its RFC 9728 metadata naming that server.
#
# The clients, each checking the exact requests it sent and every outcome:
# - typescript: interop/typescript/ema_client.mjs, @modelcontextprotocol/client (package.json):
#   its CrossAppAccessProvider runs both legs, a step-up and the issuer's refusals;
# - python: interop/python/ema_client.py, the `mcp` package (requirements.txt): its
#   IdentityAssertionOAuthProvider redeems ID-JAGs with both client authentication methods and
#   meets a refused step-up and a replayed ID-JAG;
# - rust: crates/idjag-mcp/examples/rmcp_ema_client.rs, rmcp's own EMA helper with idjag's
#   private_key_jwt signer at both token endpoints, then rmcp's client at the MCP server.
#
# Usage: scripts/interop.sh [typescript|python|rust]...   (default: all three)
# Needs cargo, node/npm, openssl, curl, and python3 >= 3.10 for the Python client.
# The processes listen on free loopback ports, or on seven consecutive ports from
# IDJAG_INTEROP_PORT. Their signing keys and the client secrets are generated per run into a
# temporary directory, deleted at exit; the processes' logs are shown when a step fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
clients=("$@")
[ ${#clients[@]} -gt 0 ] || clients=(typescript python rust)
for client in "${clients[@]}"; do
    case "$client" in
    typescript | python | rust) ;;
    *) echo "interop.sh: unknown client $client (typescript, python or rust)" >&2; exit 2 ;;
    esac
done
wants() { [[ " ${clients[*]} " == *" $1 "* ]]; }
# On a fresh Debian machine the script installs what is missing (as scripts/test.sh does).
need=()
command -v npm >/dev/null || need+=(nodejs npm)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    echo "interop.sh: installing ${need[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
for tool in node npm openssl curl; do
    command -v "$tool" >/dev/null || { echo "interop.sh: $tool is required" >&2; exit 2; }
done

# --- installs and builds
npm ci --prefix "$root/interop/oidc-mock" --no-audit --no-fund --loglevel=error
if wants typescript; then
    npm ci --prefix "$root/interop/typescript" --no-audit --no-fund --loglevel=error
fi
if wants python; then
    venv="$root/interop/python/.venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/interop/python/requirements.txt"
fi
(cd "$root" && cargo build --locked -p idjag-issuer -p idjag-resource-server)
(cd "$root" && cargo build --locked -p idjag-mcp --example mcp_server)
if wants rust; then
    (cd "$root" && cargo build --locked -p idjag-mcp --features auth-enterprise-managed --example rmcp_ema_client)
fi

# --- ports: upstream, issuer (public, admin), resource server (public, admin), MCP server and
# the Rust client's JWKS.
if [ -n "${IDJAG_INTEROP_PORT:-}" ]; then
    read -r -a ports <<<"$(seq "$IDJAG_INTEROP_PORT" $((IDJAG_INTEROP_PORT + 6)) | tr '\n' ' ')"
else
    # Seven listeners open at once, so the kernel hands out seven different free ports.
    read -r -a ports <<<"$(node -e '
        const net = require("node:net");
        const servers = Array.from({ length: 7 }, () => net.createServer());
        Promise.all(servers.map((s) => new Promise((ok) => s.listen(0, "127.0.0.1", ok)))).then(() => {
            console.log(servers.map((s) => s.address().port).join(" "));
            servers.forEach((s) => s.close());
        });')"
fi
upstream_port=${ports[0]} issuer_port=${ports[1]} issuer_admin_port=${ports[2]}
as_port=${ports[3]} as_admin_port=${ports[4]} mcp_port=${ports[5]} rust_client_port=${ports[6]}

# --- the stack's directory: configuration with the ports filled in, keys, logs.
work="$(mktemp -d)"
pids=()
names=()
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ]; then
        for name in "${names[@]}"; do
            echo "--- $name log ($work/$name.log)" >&2
            cat "$work/$name.log" >&2 || true
        done
        echo "interop.sh: FAILED (status $status)" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

render() {
    sed -e "s|{{UPSTREAM_ISSUER}}|$upstream|g" \
        -e "s/{{ISSUER_PORT}}/$issuer_port/g" -e "s/{{ISSUER_ADMIN_PORT}}/$issuer_admin_port/g" \
        -e "s/{{AS_PORT}}/$as_port/g" -e "s/{{AS_ADMIN_PORT}}/$as_admin_port/g" \
        -e "s/{{MCP_PORT}}/$mcp_port/g" -e "s/{{RUST_CLIENT_PORT}}/$rust_client_port/g" \
        "$root/interop/stack/$1" >"$work/$1"
    if grep -q '{{' "$work/$1"; then
        echo "interop.sh: a placeholder left in $1: $(grep -o '{{[A-Z_]*}}' "$work/$1" | head -n 1)" >&2
        exit 1
    fi
}
for key in issuer as; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/$key.pem" 2>/dev/null
done
IDJAG_INTEROP_IDP_SECRET="$(openssl rand -hex 24)"
IDJAG_INTEROP_AS_SECRET="$(openssl rand -hex 24)"
export IDJAG_INTEROP_IDP_SECRET IDJAG_INTEROP_AS_SECRET

# Starts a process in the background, its stdout and stderr in $work/NAME.log.
start() {
    local name=$1
    shift
    "$@" >"$work/$name.log" 2>&1 &
    pids+=("$!")
    names+=("$name")
}

# Waits until URL answers 200 (at most 30 s), or the last started process exits.
wait_ready() {
    local name=$1 url=$2 pid=${pids[-1]}
    for _ in $(seq 300); do
        curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { echo "interop.sh: $name exited" >&2; exit 1; }
        sleep 0.1
    done
    echo "interop.sh: $name did not answer $url" >&2
    exit 1
}

start oidc-mock "$root/interop/oidc-mock/node_modules/.bin/node" "$root/interop/oidc-mock/serve.mjs" \
    --port "$upstream_port"
# Its first line names its issuer (oauth2-mock-server calls itself http://localhost:PORT), which
# idjag-issuer must trust byte for byte; it has no readiness endpoint, but its discovery
# document answers once it listens.
for _ in $(seq 300); do
    grep -q '^issuer ' "$work/oidc-mock.log" && break
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
done
upstream="$(sed -n 's/^issuer //p' "$work/oidc-mock.log")"
[ -n "$upstream" ] || { echo "interop.sh: oidc-mock did not start" >&2; exit 1; }
wait_ready oidc-mock "$upstream/.well-known/openid-configuration"

issuer="http://127.0.0.1:$issuer_port"
resource_as="http://127.0.0.1:$as_port"
mcp="http://127.0.0.1:$mcp_port/mcp"
for file in issuer.toml policy.toml resource-server.toml; do
    render "$file"
done
start idjag-issuer "$target_dir/debug/idjag-issuer" serve --config "$work/issuer.toml"
wait_ready idjag-issuer "http://127.0.0.1:$issuer_admin_port/readyz"
start idjag-resource-server "$target_dir/debug/idjag-resource-server" serve --config "$work/resource-server.toml"
wait_ready idjag-resource-server "http://127.0.0.1:$as_admin_port/readyz"
start mcp-server "$target_dir/debug/examples/mcp_server" --resource "$mcp" --authorization-server "$resource_as"
wait_ready mcp-server "http://127.0.0.1:$mcp_port/readyz"
echo "stack: upstream $upstream, idjag-issuer $issuer, idjag-resource-server $resource_as, MCP server $mcp"

export IDJAG_INTEROP_UPSTREAM="$upstream" IDJAG_INTEROP_ISSUER="$issuer" IDJAG_INTEROP_AS="$resource_as"
export IDJAG_INTEROP_MCP="$mcp" IDJAG_INTEROP_RUST_CLIENT_JWKS="http://127.0.0.1:$rust_client_port/jwks.json"
for client in "${clients[@]}"; do
    echo "--- $client"
    case "$client" in
    typescript) "$root/interop/typescript/node_modules/.bin/node" "$root/interop/typescript/ema_client.mjs" ;;
    python) "$root/interop/python/.venv/bin/python" "$root/interop/python/ema_client.py" ;;
    rust) "$target_dir/debug/examples/rmcp_ema_client" ;;
    esac
done

# Secrets and tokens never reach a log: neither client secret, nor any JWT (its header starts
# with `eyJ`), in what the four processes wrote.
echo "--- logs"
for name in "${names[@]}"; do
    if grep -qF -e "$IDJAG_INTEROP_IDP_SECRET" -e "$IDJAG_INTEROP_AS_SECRET" -e 'eyJ' "$work/$name.log"; then
        echo "interop.sh: $name logged a secret or a token" >&2
        exit 1
    fi
done
echo "ok - no process logged a client secret or a token"
