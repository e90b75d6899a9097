"""The official Python MCP SDK (`mcp`, pinned in requirements.txt) signs in through idjag-gateway.

The gateway is the authorization server of its routes (`idjag-gateway demo --serve`); users sign in
at the demo's development IdP, whose login page lists its users. The SDK's `OAuthClientProvider`
runs the authorization code flow with PKCE; this script plays the browser in its redirect handler
(it follows the gateway's redirect to the IdP's login page, submits the form as alice and stops at
the client's redirect URI) and hands the code, state and iss to the SDK in its callback handler.
Twice: with a Client ID Metadata Document the script serves itself on loopback over HTTPS (the SDK
takes only `https` metadata URLs; the shell script made a throwaway CA the gateway trusts), and with
dynamic registration (RFC 7591). Each time it lists the tools of the ID-JAG route, calls one,
forces a token refresh and calls again.

Usage: python gateway_oauth.py INFO_FILE CERT_FILE KEY_FILE
  INFO_FILE: written by `idjag-gateway demo --serve --info`;
  CERT_FILE, KEY_FILE: a certificate for 127.0.0.1 signed by a CA the gateway trusts.

Each check prints "ok - ..." and, per run, "audit-expect <agent> <user> <upstream> <n>" for
scripts/interop_gateway.sh; the first failure prints "FAIL: ..." and exits 1.
"""

import json
import ssl
import sys
import threading
import time
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

from checks import Checks, Failed, MemoryStorage, expect, ok, run

USER = "alice"
# The browser stops at the client's redirect URI and never loads it: nothing listens there.
REDIRECT_URI = "http://127.0.0.1:53682/callback"


class LoginForm(HTMLParser):
    """The IdP login page's heading, form action, hidden fields and user buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action = None
        self.hidden = {}
        self.users = []
        self.heading = ""
        self._in_h1 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a.get("value", "")
        elif tag == "button" and a.get("name") == "user":
            self.users.append(a.get("value"))
        elif tag == "h1":
            self._in_h1 = True

    def handle_endtag(self, tag):
        if tag == "h1":
            self._in_h1 = False

    def handle_data(self, data):
        if self._in_h1:
            self.heading += data


class Browser:
    """The user's browser: follows redirects one by one, keeps cookies, picks a user on the
    IdP's login page, and stops at the client's redirect URI."""

    def __init__(self, info: dict) -> None:
        self.info = info
        self.landing = None

    async def open(self, authorization_url: str) -> None:
        gateway = self.info["gateway"]["authorization_server"]
        expect(
            authorization_url.startswith(gateway["authorization_endpoint"] + "?"),
            f"the SDK sends the browser to the gateway's authorization endpoint, not {authorization_url}",
        )
        idp = self.info["idp"]["authorization_endpoint"]
        async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as http:
            response = await http.get(authorization_url)
            url = self.follow_to(response, idp)
            page = await http.get(url)
            expect(page.status_code == 200, f"the IdP's login page answered {page.status_code}")
            form = LoginForm()
            form.feed(page.text)
            expect(form.heading == "Sign in to mcp-gateway", f"the login page's heading: {form.heading!r}")
            expect(form.users == ["alice", "bob", "carol"], f"the login page's users: {form.users}")
            expect(set(form.hidden) == {"request", "csrf"}, f"the login form's fields: {sorted(form.hidden)}")
            response = await http.post(
                urljoin(url, form.action),
                data={**form.hidden, "user": USER},
            )
            url = self.follow_to(response, self.info["gateway"]["url"] + "/oauth/callback")
            response = await http.get(url)
            self.landing = self.follow_to(response, REDIRECT_URI)

    @staticmethod
    def follow_to(response: httpx2.Response, prefix: str) -> str:
        location = response.headers.get("location", "")
        expect(
            response.status_code in (302, 303) and location.startswith(prefix + "?"),
            f"{response.request.url} should redirect to {prefix}, got {response.status_code} {location!r}",
        )
        return location

    async def callback(self) -> AuthorizationCodeResult:
        expect(self.landing is not None, "the browser never reached the redirect URI")
        query = parse_qsl(urlsplit(self.landing).query)
        names = [name for name, _ in query]
        expect(names == ["code", "state", "iss"], f"the redirect URI's parameters: {names}")
        params = dict(query)
        expect(params["iss"] == self.info["gateway"]["url"], f"iss {params['iss']!r}")
        return AuthorizationCodeResult(code=params["code"], state=params["state"], iss=params["iss"])


def serve_metadata_document(cert: str, key: str) -> tuple[str, ThreadingHTTPServer]:
    """Serves this client's metadata document over HTTPS on loopback: its URL (the client id)."""
    document = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/oauth/client.json":
                self.send_error(404)
                return
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    url = f"https://127.0.0.1:{server.server_address[1]}/oauth/client.json"
    document.update(
        {
            "client_id": url,
            "client_name": "Python MCP SDK (metadata document)",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return url, server


def text_of(result) -> str:
    expect(not result.is_error, f"the tool answered an error: {result}")
    return "".join(block.text for block in result.content)


async def sign_in_and_call(info: dict, how: str, metadata_url: str | None) -> None:
    route = next(r for r in info["gateway"]["routes"] if r["kind"] == "id_jag")
    token_endpoint = info["gateway"]["authorization_server"]["token_endpoint"]
    browser = Browser(info)
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=route["url"],
        client_metadata=OAuthClientMetadata(
            client_name=f"Python MCP SDK ({how})",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.open,
        callback_handler=browser.callback,
        client_metadata_url=metadata_url,
    )
    token_requests = []

    async def keep(response: httpx2.Response) -> None:
        if str(response.request.url) == token_endpoint:
            form = dict(parse_qsl(response.request.content.decode()))
            token_requests.append((form.get("grant_type"), response.status_code))

    http = httpx2.AsyncClient(auth=provider, event_hooks={"response": [keep]}, timeout=30)
    async with Client(streamable_http_client(route["url"], http_client=http)) as client:
        client_id = storage.client_info.client_id
        if metadata_url:
            expect(client_id == metadata_url, f"the client id is the document's URL, not {client_id}")
        else:
            expect(client_id.startswith("dcr."), f"a registered client id starts with dcr., not {client_id[:12]}")
        expect(token_requests == [("authorization_code", 200)], f"token requests: {token_requests}")
        ok(f"{how}: signed in as {USER} through the IdP's login page; the gateway issued tokens to {client_id[:40]}")

        tools = sorted(tool.name for tool in (await client.list_tools()).tools)
        expect(tools == ["add_note", "list_notes"], f"tools/list: {tools}")
        ok(f"{how}: tools/list on the ID-JAG route shows {tools} (delete_all_notes is hidden by policy)")

        before = text_of(await client.call_tool("list_notes", {}))
        count = 0 if before == "No notes yet." else len(before.splitlines())
        added = text_of(await client.call_tool("add_note", {"text": f"from the Python SDK ({how})"}))
        expect(added == f"Note {count + 1} added by {USER}.", f"add_note answered {added!r}")
        ok(f'{how}: add_note answered "{added}" (the upstream got a token of its own AS for {USER})')

        first = storage.tokens
        expect(first.refresh_token is not None, "the gateway issued a refresh token")
        # The access token is valid for 5 minutes: make the SDK see it as expired now.
        provider.context.token_expiry_time = time.time() - 1
        after = text_of(await client.call_tool("list_notes", {}))
        last = after.splitlines()[-1]
        expect(last == f"{count + 1}. from the Python SDK ({how}) (by {USER})", f"list_notes ends with {last!r}")
        expect(
            token_requests == [("authorization_code", 200), ("refresh_token", 200)],
            f"token requests: {token_requests}",
        )
        second = storage.tokens
        expect(second.access_token != first.access_token, "the refresh gave a new access token")
        expect(second.refresh_token != first.refresh_token, "the refresh rotated the refresh token")
        ok(f"{how}: the SDK refreshed its token (rotated) and list_notes ends with \"{last}\"")
    # For scripts/interop_gateway.sh: three tools/call lines naming this client as the agent.
    print(f"audit-expect {client_id} {USER} {route['name']} 3", flush=True)


async def main() -> None:
    if len(sys.argv) != 4:
        raise Failed("usage: gateway_oauth.py INFO_FILE CERT_FILE KEY_FILE")
    with open(sys.argv[1]) as f:
        info = json.load(f)
    metadata = info["gateway"]["authorization_server"]
    expect(metadata["client_id_metadata_documents"], "the gateway takes metadata documents")
    expect(metadata["dynamic_registration"], "the gateway takes dynamic registration")
    url, server = serve_metadata_document(sys.argv[2], sys.argv[3])
    try:
        await sign_in_and_call(info, "metadata document", url)
    finally:
        server.shutdown()
    await sign_in_and_call(info, "dynamic registration", None)
    print(f"{Checks.count} checks passed")


run(main)
