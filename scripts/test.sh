#!/usr/bin/env bash
# The test suite, on a fresh machine: installs what the tests start themselves (redis-server, the openssl
# command-line tool, the OpenSSL headers the josekit backend links against, node and npm for the pinned npm
# packages some tests start, Chromium for the gateway's pages), then runs every crate's tests. Screenshots
# of the admin page and the sign-in pages land in target/screenshots/.
# Tests start their own servers on loopback (redis-server among them) and stop them when done.
# Usage: bash scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v openssl >/dev/null || need+=(openssl)
# The gateway's admin page and sign-in pages are tested in headless Chromium (tests/api/browser.rs,
# sign_in_pages.rs; mkfifo and bash hand it the DevTools pipe). Under CI they fail when Chromium is missing.
command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
    || command -v google-chrome >/dev/null || need+=(chromium)
pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev pkg-config)
command -v npm >/dev/null || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || { echo "scripts/test.sh: install ${need[*]} first" >&2; exit 1; }
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    echo "scripts/test.sh: installing ${need[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian starts a redis-server service on install; the tests use their own instances on free ports.

# idjag-issuer's bridge tests start oauth2-mock-server (pinned in interop/oidc-mock) as the upstream OpenID provider.
if [ ! -f interop/oidc-mock/node_modules/oauth2-mock-server/package.json ]; then
    npm ci --prefix interop/oidc-mock --no-audit --no-fund >/dev/null
fi

# The stdio MCP servers the gateway's stdio tests and benchmark start (pinned in
# examples/gateway/tests/stdio/package-lock.json); the tests fail without them when CI is set.
(cd examples/gateway/tests/stdio && npm ci --no-audit --no-fund --loglevel=error)

cargo test --workspace --all-features --locked "$@"
