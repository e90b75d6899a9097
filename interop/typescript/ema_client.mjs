// The official TypeScript MCP client (@modelcontextprotocol/client, pinned in package.json)
// against the servers idjag ships, on loopback (interop/stack/): the user signs in at an
// upstream OpenID provider (oauth2-mock-server), idjag-issuer trades the ID token for an ID-JAG,
// idjag-resource-server redeems it for an access token, and an rmcp server behind idjag-mcp's
// McpAuth (crates/idjag-mcp/examples/mcp_server.rs) accepts only that server's tokens.
// Run by scripts/interop.sh, which starts them and sets the environment read below.
//
// Each check prints "ok - ..." or throws; the process exits non-zero on the first failure.

import assert from 'node:assert/strict';
import {
    Client,
    CrossAppAccessProvider,
    StreamableHTTPClientTransport,
    requestJwtAuthorizationGrant,
} from '@modelcontextprotocol/client';

import { ID_JAG, ID_TOKEN, JWT_BEARER, TOKEN_EXCHANGE, ok, recordingFetch, summary, tokenRequest } from './checks.mjs';

function env(name) {
    const value = process.env[name];
    assert.ok(value, `${name} is not set (scripts/interop.sh sets it)`);
    return value;
}
const upstreamUrl = env('IDJAG_INTEROP_UPSTREAM');
const idpUrl = env('IDJAG_INTEROP_ISSUER');
const asUrl = env('IDJAG_INTEROP_AS');
const mcpUrl = env('IDJAG_INTEROP_MCP');

// The requesting app's registrations (interop/stack/): at idjag-issuer (also its client id at
// the upstream provider) and at idjag-resource-server. The secrets are generated per run.
const agentAtIdp = { id: 'repo-agent', secret: env('IDJAG_INTEROP_IDP_SECRET') };
const agentAtAs = { id: '8d2a1c07e5f94b3a', secret: env('IDJAG_INTEROP_AS_SECRET') };

/** The user signs in at the upstream provider (a password grant here): an ID token for the app. */
async function signIn(user) {
    const response = await fetch(`${upstreamUrl}/token`, {
        method: 'POST',
        body: new URLSearchParams({ grant_type: 'password', username: user, client_id: agentAtIdp.id, scope: 'openid' }),
    });
    assert.equal(response.status, 200);
    const idToken = (await response.json()).id_token;
    assert.match(idToken, /^[\w-]+\.[\w-]+\.[\w-]+$/, `an ID token for ${user}`);
    return idToken;
}

/** An SDK client for `user`, wired exactly as the SDK's documentation shows. */
async function connect(user) {
    const idToken = await signIn(user);
    const { fetchFn, requests: tokenRequests } = recordingFetch(tokenRequest);
    const provider = new CrossAppAccessProvider({
        assertion: async (ctx) => {
            const grant = await requestJwtAuthorizationGrant({
                tokenEndpoint: `${idpUrl}/token`,
                audience: ctx.authorizationServerUrl,
                resource: ctx.resourceUrl,
                idToken,
                clientId: agentAtIdp.id,
                clientSecret: agentAtIdp.secret,
                scope: ctx.scope,
                fetchFn: ctx.fetchFn,
            });
            return grant.jwtAuthGrant;
        },
        clientId: agentAtAs.id,
        clientSecret: agentAtAs.secret,
        expectedIssuer: asUrl,
        fetchFn,
    });
    const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
        authProvider: provider,
        fetch: fetchFn,
    });
    const client = new Client({ name: 'idjag-ts-interop', version: '1.0.0' });
    return { client, transport, tokenRequests, idToken };
}

function textOf(result) {
    assert.equal(result.isError ?? false, false, JSON.stringify(result));
    return result.content.map((block) => block.text).join('');
}

// 1. alice: the whole flow, and the exact requests the SDK sent to our two token endpoints.
{
    const { client, transport, tokenRequests, idToken } = await connect('alice');
    await client.connect(transport);
    ok('alice: the TypeScript client connected through the ID-JAG flow (requirements EMA-02, EMA-03, EMA-06, EMA-07)');

    const exchange = tokenRequests.find((r) => r.url === `${idpUrl}/token`);
    assert.ok(exchange, 'a token exchange at the IdP');
    assert.equal(exchange.form.get('grant_type'), TOKEN_EXCHANGE);
    assert.equal(exchange.form.get('requested_token_type'), ID_JAG);
    assert.equal(exchange.form.get('subject_token_type'), ID_TOKEN);
    assert.equal(exchange.form.get('subject_token'), idToken);
    assert.equal(exchange.form.get('audience'), asUrl);
    assert.equal(exchange.form.get('resource'), mcpUrl);
    assert.equal(exchange.form.get('client_id'), agentAtIdp.id);
    ok('alice: idjag-issuer accepted the SDK token exchange for the upstream ID token (requirements TX-01 to TX-05, TX-08; client_secret_post)');

    const redemption = tokenRequests.find((r) => r.url === `${asUrl}/token`);
    assert.ok(redemption, 'a JWT-bearer grant at idjag-resource-server');
    assert.equal(redemption.form.get('grant_type'), JWT_BEARER);
    assert.match(redemption.form.get('assertion'), /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const basic = Buffer.from(`${agentAtAs.id}:${agentAtAs.secret}`).toString('base64');
    assert.equal(redemption.headers.get('authorization'), `Basic ${basic}`);
    ok('alice: idjag-resource-server accepted the SDK JWT-bearer grant (requirements JB-01, JB-02, JB-05 to JB-09; client_secret_basic)');

    const tools = (await client.listTools()).tools.map((tool) => tool.name).sort();
    assert.deepEqual(tools, ['delete_repo', 'whoami']);
    ok('alice: tools/list');

    const who = textOf(await client.callTool({ name: 'whoami', arguments: {} }));
    assert.equal(who, `alice via ${agentAtAs.id} with [repo.read]`);
    ok(`alice: whoami answered "${who}"`);

    // delete_repo needs repo.admin: the MCP server answers 403 insufficient_scope, the SDK asks
    // for the union of scopes through a new exchange, and the issuer's policy allows it for alice.
    const exchangesBefore = tokenRequests.filter((r) => r.url === `${idpUrl}/token`).length;
    const deleted = textOf(await client.callTool({ name: 'delete_repo', arguments: {} }));
    assert.equal(deleted, 'repository deleted by alice');
    const stepUp = tokenRequests.filter((r) => r.url === `${idpUrl}/token`).slice(exchangesBefore);
    assert.equal(stepUp.length, 1, 'one new exchange for the step-up');
    assert.deepEqual(stepUp[0].form.get('scope').split(' ').sort(), ['repo.admin', 'repo.read']);
    ok('alice: delete_repo after a step-up to "repo.read repo.admin" (one new exchange)');

    await client.close();
}

// 2. bob: the issuer's policy refuses him (a deny rule); the SDK surfaces the refusal and never
// reaches the tool.
{
    const { client, transport, tokenRequests } = await connect('bob');
    await assert.rejects(client.connect(transport), (error) => {
        assert.equal(String(error), 'Error: Token exchange failed: access_denied - the request is not allowed');
        return true;
    });
    assert.equal(tokenRequests.filter((r) => r.url === `${asUrl}/token`).length, 0);
    ok('bob: idjag-issuer refused the exchange (access_denied, "the request is not allowed") and no grant reached idjag-resource-server');
}

// 3. carol may only read: whoami works, delete_repo is refused by the MCP server's per-tool scope.
{
    const { client, transport, tokenRequests } = await connect('carol');
    await client.connect(transport);
    const who = textOf(await client.callTool({ name: 'whoami', arguments: {} }));
    assert.equal(who, `carol via ${agentAtAs.id} with [repo.read]`);
    ok(`carol: whoami answered "${who}"`);
    // The SDK steps up once; the issuer narrows the scope to what carol may have (repo.read);
    // the MCP server refuses again and the SDK gives up. The tool never runs.
    await assert.rejects(client.callTool({ name: 'delete_repo', arguments: {} }), (error) => {
        assert.equal(
            String(error),
            'SdkHttpError: Server returned 403 insufficient_scope after step-up re-authorization (retry limit 1 reached)',
        );
        return true;
    });
    const exchanges = tokenRequests.filter((r) => r.url === `${idpUrl}/token`);
    assert.equal(exchanges.length, 2, 'the first exchange and one step-up');
    assert.deepEqual(exchanges[1].form.get('scope').split(' ').sort(), ['repo.admin', 'repo.read']);
    ok('carol: delete_repo refused after one step-up (idjag-issuer grants her repo.read only)');
    await client.close();
}

summary();
