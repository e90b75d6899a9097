"""The official Python MCP SDK (`mcp`, pinned in requirements.txt) against the servers idjag
ships, on loopback (interop/stack/).

The user signs in at an upstream OpenID provider (oauth2-mock-server), idjag-issuer trades the
ID token for an ID-JAG, idjag-resource-server redeems it for an access token, and an rmcp server
behind idjag-mcp's McpAuth (crates/idjag-mcp/examples/mcp_server.rs) accepts only that server's
tokens. The SDK's `IdentityAssertionOAuthProvider` runs leg 2 (the RFC 7523 JWT-bearer grant);
leg 1 (the token exchange at the issuer) is the application's job in this SDK, done here with a
plain form POST. Run by scripts/interop.sh, which starts the servers and sets the environment
read below.

Each check prints "ok - ..." or raises; the process exits non-zero on the first failure.
"""

import asyncio
import base64
import os
from urllib.parse import parse_qs, quote

import httpx2
from mcp import Client
from mcp.client.auth import OAuthTokenError
from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider
from mcp.client.streamable_http import streamable_http_client

from checks import ID_JAG, JWT_BEARER, Checks, MemoryStorage, id_jag_request, ok

UPSTREAM_URL = os.environ["IDJAG_INTEROP_UPSTREAM"]
IDP_URL = os.environ["IDJAG_INTEROP_ISSUER"]
AS_URL = os.environ["IDJAG_INTEROP_AS"]
MCP_URL = os.environ["IDJAG_INTEROP_MCP"]

# The requesting app's registrations (interop/stack/): at idjag-issuer (also its client id at
# the upstream provider) and at idjag-resource-server. The secrets are generated per run.
AGENT_AT_IDP = ("repo-agent", os.environ["IDJAG_INTEROP_IDP_SECRET"])
AGENT_AT_AS = ("8d2a1c07e5f94b3a", os.environ["IDJAG_INTEROP_AS_SECRET"])



async def id_token_for(http: httpx2.AsyncClient, user: str) -> str:
    """The user signs in at the upstream provider (a password grant here): an ID token for the app."""
    response = await http.post(
        f"{UPSTREAM_URL}/token",
        data={"grant_type": "password", "username": user, "client_id": AGENT_AT_IDP[0], "scope": "openid"},
    )
    assert response.status_code == 200, response.status_code
    return response.json()["id_token"]


async def exchange(http: httpx2.AsyncClient, id_token: str, audience: str, resource: str) -> str:
    """Leg 1 (RFC 8693) at idjag-issuer, as an application using this SDK writes it. The SDK's
    callback gets no scope, so the application asks for every scope it may use; the issuer's
    policy narrows them per user."""
    response = await http.post(
        f"{IDP_URL}/token",
        auth=AGENT_AT_IDP,
        data=id_jag_request(id_token, audience, resource, "repo.read repo.admin"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == ID_JAG and body["token_type"] == "N_A", body
    return body["access_token"]


def recorder():
    """An httpx2 request hook keeping every request sent to the resource AS's token endpoint."""
    seen = []

    async def hook(request: httpx2.Request) -> None:
        if str(request.url) == f"{AS_URL}/token":
            seen.append(request)

    return seen, hook


async def connect(user: str, auth_method: str, assertion_for=None):
    """An SDK client for `user`, with the provider set up as the SDK's documentation shows."""
    plain = httpx2.AsyncClient()
    id_token = await id_token_for(plain, user)

    async def assertion_provider(audience: str, resource: str) -> str:
        if assertion_for is not None:
            return await assertion_for(plain, id_token, audience, resource)
        return await exchange(plain, id_token, audience, resource)

    provider = IdentityAssertionOAuthProvider(
        server_url=MCP_URL,
        storage=MemoryStorage(),
        client_id=AGENT_AT_AS[0],
        client_secret=AGENT_AT_AS[1],
        issuer=AS_URL,
        assertion_provider=assertion_provider,
        token_endpoint_auth_method=auth_method,
    )
    seen, hook = recorder()
    http = httpx2.AsyncClient(auth=provider, event_hooks={"request": [hook]}, timeout=30)
    return Client(streamable_http_client(MCP_URL, http_client=http)), seen


def text_of(result) -> str:
    assert not result.is_error, result
    return "".join(block.text for block in result.content)


def form_of(request: httpx2.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode(), keep_blank_values=True)


async def main() -> None:
    # 1. alice, with the SDK's default client_secret_post at the resource AS.
    client, seen = await connect("alice", "client_secret_post")
    async with client:
        ok("alice: the Python client connected through the ID-JAG flow (requirements EMA-02, EMA-03, EMA-06, EMA-07)")
        assert len(seen) == 1, len(seen)
        form = form_of(seen[0])
        assert form["grant_type"] == [JWT_BEARER], form
        assert form["client_id"] == [AGENT_AT_AS[0]] and form["client_secret"] == [AGENT_AT_AS[1]]
        assert form["resource"] == [MCP_URL], form["resource"]
        assert "authorization" not in seen[0].headers
        ok("alice: idjag-resource-server accepted the SDK JWT-bearer grant (requirements JB-01, JB-02, JB-14; client_secret_post, request resource)")

        tools = sorted(tool.name for tool in (await client.list_tools()).tools)
        assert tools == ["delete_repo", "whoami"], tools
        ok("alice: tools/list")
        who = text_of(await client.call_tool("whoami", {}))
        assert who == f"alice via {AGENT_AT_AS[0]} with [repo.admin repo.read]", who
        ok(f'alice: whoami answered "{who}"')
        deleted = text_of(await client.call_tool("delete_repo", {}))
        assert deleted == "repository deleted by alice", deleted
        ok("alice: delete_repo (the ID-JAG carried every scope alice may have)")

    # 2. carol, with client_secret_basic: id and secret form-urlencoded, then base64 (RFC 6749 §2.3.1).
    client, seen = await connect("carol", "client_secret_basic")
    try:
        async with client:
            expected = base64.b64encode(f"{quote(AGENT_AT_AS[0], safe='')}:{quote(AGENT_AT_AS[1], safe='')}".encode())
            assert seen[0].headers["authorization"] == f"Basic {expected.decode()}"
            assert "client_secret" not in form_of(seen[0])
            ok("carol: idjag-resource-server accepted client_secret_basic from the SDK")
            who = text_of(await client.call_tool("whoami", {}))
            assert who == f"carol via {AGENT_AT_AS[0]} with [repo.read]", who
            ok(f'carol: whoami answered "{who}"')
            # The server asks for repo.admin (403 insufficient_scope); the SDK presents a new
            # ID-JAG asking for it, and idjag-resource-server refuses: carol's ID-JAG carries
            # repo.read only. The SDK raises the refusal from its transport, ending the session.
            await client.call_tool("delete_repo", {})
        raise AssertionError("carol must not get repo.admin")
    except* OAuthTokenError as group:
        message = str(group.exceptions[0])
        assert message == (
            'Token exchange failed (400): {"error":"invalid_scope",'
            '"error_description":"the requested scope cannot be granted"}'
        ), message
    assert [form_of(r).get("scope") for r in seen] == [None, ["repo.admin"]], seen
    ok("carol: delete_repo refused: the step-up for repo.admin is invalid_scope at idjag-resource-server (requirement JB-15)")

    # 3. An ID-JAG presented twice: single use (EMA §7.4.2), and the SDK surfaces invalid_grant.
    spent = {}

    async def replayed(http, id_token, audience, resource):
        if "id_jag" not in spent:
            spent["id_jag"] = await exchange(http, id_token, audience, resource)
        return spent["id_jag"]

    first, _ = await connect("alice", "client_secret_post", replayed)
    async with first:
        ok("alice: a first client redeemed an ID-JAG")
    second, seen = await connect("alice", "client_secret_post", replayed)
    try:
        async with second:
            raise AssertionError("a replayed ID-JAG must not be redeemed")
    except* OAuthTokenError as group:
        message = str(group.exceptions[0])
        assert message == (
            'Token exchange failed (400): {"error":"invalid_grant",'
            '"error_description":"the authorization grant is invalid"}'
        ), message
    assert len(seen) == 1, len(seen)
    ok("alice: the same ID-JAG presented again was refused by idjag-resource-server with invalid_grant (requirement JB-11, EMA §7.4.2)")

    print(f"{Checks.count} checks passed")


asyncio.run(main())
