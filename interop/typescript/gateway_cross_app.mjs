// The official TypeScript MCP client (@modelcontextprotocol/client, pinned in package.json)
// as an enterprise-managed (EMA) client of idjag-gateway, against the stack of
// `idjag-gateway demo --serve`. Run by scripts/interop_gateway.sh.
//
// The SDK's CrossAppAccessProvider with a development user's ID token from the info file:
// on the gateway's 401 it reads the route's RFC 9728 metadata and the gateway's RFC 8414
// metadata; its assertion callback trades the ID token at the development IdP (RFC 8693) for
// an ID-JAG addressed to the gateway's authorization server; the provider redeems it at the
// gateway's token endpoint (RFC 7523 JWT-bearer, client_secret_basic), and the client calls a
// tool on the bridged wiki, an upstream that knows nothing of ID-JAG. Then carol, whom the
// IdP's policy refuses.
//
// Usage: node gateway_cross_app.mjs <info.json>
//
// Prints "ok - ..." per check and "audit-expect <agent> <user> <upstream> <n>": the gateway's
// audit log must hold exactly n allowed tools/call lines for that agent. Exits non-zero on
// the first failure.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
    Client,
    CrossAppAccessProvider,
    StreamableHTTPClientTransport,
    requestJwtAuthorizationGrant,
} from '@modelcontextprotocol/client';

import { ID_JAG, ID_TOKEN, JWT_BEARER, TOKEN_EXCHANGE, ok, recordingFetch, summary, tokenRequest } from './checks.mjs';

const [infoPath] = process.argv.slice(2);
if (!infoPath) {
    console.error('usage: node gateway_cross_app.mjs <info.json>');
    process.exit(2);
}
const info = JSON.parse(readFileSync(infoPath, 'utf8'));
const gateway = info.gateway.authorization_server;
const ema = info.ema_client;
const wiki = info.gateway.routes.find((route) => route.name === 'wiki');
assert.equal(wiki.kind, 'bridged', 'the wiki route has a bridged upstream');

function claimsOf(jwt) {
    return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

/** An SDK client for `user` on the wiki route, wired as the SDK's documentation shows. */
function connect(user) {
    const idToken = info.users.find((u) => u.name === user).id_token;
    const { fetchFn, requests: tokenRequests } = recordingFetch(tokenRequest);
    const provider = new CrossAppAccessProvider({
        assertion: async (ctx) => {
            const grant = await requestJwtAuthorizationGrant({
                tokenEndpoint: info.idp.token_endpoint,
                audience: ctx.authorizationServerUrl,
                resource: ctx.resourceUrl,
                idToken,
                clientId: ema.client_id,
                clientSecret: ema.client_secret,
                scope: ctx.scope,
                fetchFn: ctx.fetchFn,
            });
            return grant.jwtAuthGrant;
        },
        clientId: ema.client_id,
        clientSecret: ema.client_secret,
        expectedIssuer: gateway.issuer,
        fetchFn,
    });
    const transport = new StreamableHTTPClientTransport(new URL(wiki.url), {
        authProvider: provider,
        fetch: fetchFn,
    });
    const client = new Client({ name: 'idjag-ts-gateway-ema', version: '1.0.0' });
    return { client, transport, tokenRequests, idToken };
}

// 1. alice: ID token -> ID-JAG for the gateway -> the gateway's access token -> the wiki.
{
    const { client, transport, tokenRequests, idToken } = connect('alice');
    await client.connect(transport);
    ok('alice: the TypeScript client connected to the wiki route through the gateway');

    const exchange = tokenRequests.find((r) => r.url === info.idp.token_endpoint);
    assert.ok(exchange, 'a token exchange at the IdP');
    assert.equal(exchange.form.get('grant_type'), TOKEN_EXCHANGE);
    assert.equal(exchange.form.get('requested_token_type'), ID_JAG);
    assert.equal(exchange.form.get('subject_token_type'), ID_TOKEN);
    assert.equal(exchange.form.get('subject_token'), idToken);
    assert.equal(exchange.form.get('audience'), gateway.issuer);
    assert.equal(exchange.form.get('resource'), wiki.url);
    assert.equal(exchange.form.get('client_id'), ema.client_id);
    ok(`alice: the IdP traded her ID token for an ID-JAG (audience ${gateway.issuer}, resource ${wiki.url})`);

    const redemption = tokenRequests.find((r) => r.url === gateway.token_endpoint);
    assert.ok(redemption, "a JWT-bearer grant at the gateway's token endpoint");
    assert.equal(redemption.form.get('grant_type'), JWT_BEARER);
    const jag = claimsOf(redemption.form.get('assertion'));
    assert.equal(jag.iss, info.idp.issuer);
    assert.equal(jag.aud, gateway.issuer);
    assert.equal(jag.sub, 'alice');
    assert.equal(jag.client_id, ema.client_id);
    assert.equal(jag.resource, wiki.url);
    const basic = Buffer.from(`${ema.client_id}:${ema.client_secret}`).toString('base64');
    assert.equal(redemption.headers.get('authorization'), `Basic ${basic}`);
    ok('alice: the gateway redeemed the ID-JAG (RFC 7523, client_secret_basic)');

    const found = await client.callTool({ name: 'search', arguments: { query: 'gateway' } });
    assert.equal(found.isError ?? false, false, JSON.stringify(found));
    assert.deepEqual(found.content, [{ type: 'text', text: '2 pages match "gateway"' }]);
    ok('alice: search on the bridged wiki answered "2 pages match \\"gateway\\""');
    await client.close();
    console.log(`audit-expect ${ema.client_id} alice wiki 1`);
}

// 2. carol: the IdP's policy refuses her an ID-JAG; nothing reaches the gateway's token endpoint.
{
    const { client, transport, tokenRequests } = connect('carol');
    await assert.rejects(client.connect(transport), (error) => {
        assert.match(String(error), /access_denied/);
        return true;
    });
    assert.equal(tokenRequests.filter((r) => r.url === gateway.token_endpoint).length, 0);
    ok('carol: the IdP refused the exchange (access_denied); no grant reached the gateway');
}

summary();
