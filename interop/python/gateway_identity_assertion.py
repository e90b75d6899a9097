"""The official Python MCP SDK's identity-assertion provider (EMA, enterprise-managed authorization)
reaches a bridged upstream through idjag-gateway (`idjag-gateway demo --serve`).

Leg 1, the application's job in this SDK: bob's ID token (from the info file, issued to the EMA
requesting app) is traded at the development IdP's token endpoint (RFC 8693) for an ID-JAG whose
audience is the gateway and whose resource is the gateway's bridged route. Leg 2, the SDK's
`IdentityAssertionOAuthProvider`: the ID-JAG is redeemed at the gateway's token endpoint (RFC 7523
JWT-bearer) for a gateway access token, sent to the route; the gateway calls the wiki with the
wiki's own API key. An ID-JAG presented a second time is refused (single use).

Usage: python gateway_identity_assertion.py INFO_FILE

Each check prints "ok - ..." and, for scripts/interop_gateway.sh, "audit-expect <agent> <user>
<upstream> <n>"; the first failure prints "FAIL: ..." and exits 1.
"""

import base64
import json
import sys
from urllib.parse import parse_qsl

import httpx2
from mcp import Client
from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider
from mcp.client.streamable_http import streamable_http_client

from checks import ID_JAG, JWT_BEARER, Checks, Failed, MemoryStorage, expect, id_jag_request, ok, run

# bob: the TypeScript client signs alice in as the same EMA client, and the audit log check
# counts each user's calls.
USER = "bob"


def part(jwt: str, index: int) -> dict:
    """A JWT's header (0) or claims (1), read without verification (the gateway verifies)."""
    segment = jwt.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


async def trade(info: dict, audience: str, resource: str) -> str:
    """Leg 1 (RFC 8693): the user's ID token for an ID-JAG, as an application using this SDK
    writes it."""
    ema = info["ema_client"]
    id_token = next(u["id_token"] for u in info["users"] if u["name"] == USER)
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.post(
            info["idp"]["token_endpoint"],
            auth=(ema["client_id"], ema["client_secret"]),
            data=id_jag_request(id_token, audience, resource, ema["scope"]),
        )
    expect(response.status_code == 200, f"the IdP's token exchange answered {response.status_code}: {response.text}")
    body = response.json()
    expect(body.get("issued_token_type") == ID_JAG, f"issued_token_type {body.get('issued_token_type')!r}")
    expect(body.get("token_type") == "N_A", f"token_type {body.get('token_type')!r}")
    return body["access_token"]


def connect(info: dict, route: dict, assertion_provider):
    """An SDK client of `route` with the identity-assertion provider, as the SDK documents it;
    every request to the gateway's token endpoint is kept."""
    ema = info["ema_client"]
    gateway = info["gateway"]["authorization_server"]
    provider = IdentityAssertionOAuthProvider(
        server_url=route["url"],
        storage=MemoryStorage(),
        client_id=ema["client_id"],
        client_secret=ema["client_secret"],
        issuer=gateway["issuer"],
        assertion_provider=assertion_provider,
    )
    seen = []

    async def keep(response: httpx2.Response) -> None:
        if str(response.request.url) == gateway["token_endpoint"]:
            seen.append((dict(parse_qsl(response.request.content.decode())), response.status_code))

    http = httpx2.AsyncClient(auth=provider, event_hooks={"response": [keep]}, timeout=30)
    return Client(streamable_http_client(route["url"], http_client=http)), seen


def text_of(result) -> str:
    expect(not result.is_error, f"the tool answered an error: {result}")
    return "".join(block.text for block in result.content)


async def main() -> None:
    if len(sys.argv) != 2:
        raise Failed("usage: gateway_identity_assertion.py INFO_FILE")
    with open(sys.argv[1]) as f:
        info = json.load(f)
    route = next(r for r in info["gateway"]["routes"] if r["kind"] == "bridged")
    issuer = info["gateway"]["authorization_server"]["issuer"]
    ema = info["ema_client"]
    jags = []

    async def assertion_provider(audience: str, resource: str) -> str:
        expect(audience == issuer, f"the SDK asks for an ID-JAG for {audience}, not the gateway {issuer}")
        expect(resource == route["url"], f"the SDK asks for an ID-JAG for {resource}, not the route")
        jags.append(await trade(info, audience, resource))
        return jags[-1]

    client, seen = connect(info, route, assertion_provider)
    async with client:
        expect(len(jags) == 1, f"{len(jags)} ID-JAGs asked for")
        header, claims = part(jags[0], 0), part(jags[0], 1)
        expect(header.get("typ") == "oauth-id-jag+jwt", f"the ID-JAG's typ {header.get('typ')!r}")
        expect(
            (claims.get("iss"), claims.get("aud"), claims.get("sub"), claims.get("client_id"), claims.get("resource"))
            == (info["idp"]["issuer"], issuer, USER, ema["client_id"], route["url"]),
            f"the ID-JAG's claims: {claims}",
        )
        ok(f"leg 1: the IdP issued an ID-JAG for {USER}, audience the gateway, resource {route['url']}")
        expect(len(seen) == 1, f"{len(seen)} token requests to the gateway")
        form, status = seen[0]
        expect(status == 200, f"the gateway's token endpoint answered {status}")
        expect(form.get("grant_type") == JWT_BEARER, f"grant_type {form.get('grant_type')!r}")
        expect(form.get("assertion") == jags[0], "the assertion is the ID-JAG from leg 1")
        expect(form.get("client_id") == ema["client_id"], f"client_id {form.get('client_id')!r}")
        expect(form.get("resource") == route["url"], f"resource {form.get('resource')!r}")
        ok("leg 2: the gateway redeemed the ID-JAG (RFC 7523, client_secret_post) for an access token")

        answer = text_of(await client.call_tool("search", {"query": "roadmap"}))
        expect(answer == '2 pages match "roadmap"', f"search answered {answer!r}")
        ok(f"the bridged route answered {answer!r} (the gateway called the wiki with its API key)")

    # For scripts/interop_gateway.sh: the stack's audit log must name the EMA client as the agent.
    print(f"audit-expect {ema['client_id']} {USER} {route['name']} 1", flush=True)
    print(f"{Checks.count} checks passed")


run(main)
