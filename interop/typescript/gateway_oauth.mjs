// The official TypeScript MCP client (@modelcontextprotocol/client, pinned in package.json)
// signs in through idjag-gateway as a standard OAuth MCP client, against the stack of
// `idjag-gateway demo --serve`. Run by scripts/interop_gateway.sh.
//
// The SDK's own OAuthClientProvider flow (`auth()` inside StreamableHTTPClientTransport): on
// the gateway's 401 it reads the route's RFC 9728 metadata, then the gateway's RFC 8414
// metadata, gets a client id, and starts the authorization code flow with PKCE. This script
// plays the browser: it follows the gateway's /oauth/authorize to the IdP's development login
// page, picks alice, follows the redirects back to the client's loopback redirect URI and
// hands the callback to the SDK's finishAuth. Then tools through the route whose upstream is
// an ID-JAG upstream (notes), a forced refresh (the SDK's refresh_token path), and again.
//
// Twice: with a Client ID Metadata Document (served here over HTTPS on loopback, its URL the
// client_id; the SDK accepts only https URLs there) and with RFC 7591 dynamic registration.
//
// Usage: node gateway_oauth.mjs <info.json> <cert.pem> <key.pem>
//   info.json: `demo --serve --info`; cert.pem/key.pem: a loopback certificate for the
//   document server that the gateway trusts (the script sets this up).
//
// Prints "ok - ..." per check and, per run, "audit-expect <agent> <user> <upstream> <n>":
// the gateway's audit log must hold exactly n allowed tools/call lines for that agent. Exits
// non-zero on the first failure.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { randomBytes } from 'node:crypto';
import {
    Client,
    StreamableHTTPClientTransport,
    UnauthorizedError,
} from '@modelcontextprotocol/client';

import { ok, recordingFetch, summary } from './checks.mjs';

const [infoPath, certPath, keyPath] = process.argv.slice(2);
if (!infoPath || !certPath || !keyPath) {
    console.error('usage: node gateway_oauth.mjs <info.json> <cert.pem> <key.pem>');
    process.exit(2);
}
const info = JSON.parse(readFileSync(infoPath, 'utf8'));
const gateway = info.gateway.authorization_server;
const notes = info.gateway.routes.find((route) => route.name === 'notes');
assert.equal(notes.kind, 'id_jag', 'the notes route has an ID-JAG upstream');

const USER = 'alice';
const REFRESH = 'refresh_token';

/**
 * The SDK's OAuthClientProvider for an interactive client, kept in memory: one client, one
 * token set, the PKCE verifier and the discovery state across the redirect.
 */
class InteractiveProvider {
    constructor({ redirectUrl, clientMetadataUrl }) {
        this._redirectUrl = redirectUrl;
        this.clientMetadataUrl = clientMetadataUrl;
        this.authorizationUrl = undefined;
        this.expectedState = undefined;
        this.client = undefined;
        this.saved = undefined;
        this.verifier = undefined;
        this.discovery = undefined;
    }
    get redirectUrl() {
        return this._redirectUrl;
    }
    get clientMetadata() {
        return {
            client_name: 'idjag TypeScript interop',
            redirect_uris: [this._redirectUrl],
            grant_types: ['authorization_code', REFRESH],
            response_types: ['code'],
            token_endpoint_auth_method: 'none',
        };
    }
    state() {
        this.expectedState = randomBytes(16).toString('hex');
        return this.expectedState;
    }
    clientInformation() {
        return this.client;
    }
    saveClientInformation(client) {
        this.client = client;
    }
    tokens() {
        return this.saved;
    }
    saveTokens(tokens) {
        this.saved = tokens;
    }
    redirectToAuthorization(url) {
        this.authorizationUrl = url;
    }
    saveCodeVerifier(verifier) {
        this.verifier = verifier;
    }
    codeVerifier() {
        return this.verifier;
    }
    saveDiscoveryState(state) {
        this.discovery = state;
    }
    discoveryState() {
        return this.discovery;
    }
}

/** Decodes the few HTML entities the login page uses. */
function unescapeHtml(text) {
    return text
        .replaceAll('&quot;', '"')
        .replaceAll('&#39;', "'")
        .replaceAll('&lt;', '<')
        .replaceAll('&gt;', '>')
        .replaceAll('&amp;', '&');
}

function attribute(tag, name) {
    const match = tag.match(new RegExp(`\\b${name}="([^"]*)"`));
    return match ? unescapeHtml(match[1]) : undefined;
}

/** The user's browser: redirects one by one, cookies per origin, the IdP's login form. */
class Browser {
    constructor() {
        this.cookies = new Map();
    }

    async send(url, form) {
        const jar = this.cookies.get(url.origin) ?? new Map();
        const headers = {};
        if (jar.size > 0) {
            headers.cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
        }
        const init = { redirect: 'manual', headers };
        if (form) {
            init.method = 'POST';
            init.body = new URLSearchParams(form);
        }
        const response = await fetch(url, init);
        for (const cookie of response.headers.getSetCookie()) {
            const [pair, ...attributes] = cookie.split(';');
            const at = pair.indexOf('=');
            const gone = attributes.some((a) => a.trim().toLowerCase() === 'max-age=0');
            if (gone) jar.delete(pair.slice(0, at).trim());
            else jar.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
        }
        this.cookies.set(url.origin, jar);
        const location = response.headers.get('location');
        return {
            url,
            status: response.status,
            location: location ? new URL(location, url) : undefined,
            body: await response.text(),
        };
    }

    /** Follows redirects until one points at `stopAt` (returned) or a page answers. */
    async follow(page, stopAt) {
        const seen = [];
        for (let hops = 0; hops < 10; hops += 1) {
            if (!(page.status >= 300 && page.status < 400 && page.location)) return { page, seen };
            if (page.location.href.startsWith(stopAt)) return { landed: page.location, seen };
            seen.push(page.location);
            page = await this.send(page.location);
        }
        throw new Error('too many redirects');
    }

    /** From the authorization URL through the IdP's login page, as `user`, to `stopAt`. */
    async signIn(authorizationUrl, user, stopAt) {
        const first = await this.follow(await this.send(authorizationUrl), stopAt);
        assert.ok(first.page, `a login page, not a redirect to ${first.landed}`);
        const login = first.page;
        assert.equal(login.status, 200, `the login page: ${login.body.slice(0, 300)}`);
        assert.equal(login.url.origin, new URL(info.idp.issuer).origin, 'the login page is the IdP');
        const formTag = login.body.match(/<form[^>]*>/);
        assert.ok(formTag, 'a login form');
        const form = [];
        for (const input of login.body.matchAll(/<input[^>]*>/g)) {
            const name = attribute(input[0], 'name');
            if (name) form.push([name, attribute(input[0], 'value') ?? '']);
        }
        const button = [...login.body.matchAll(/<button[^>]*>/g)]
            .map((b) => b[0])
            .find((b) => attribute(b, 'name') === 'user' && attribute(b, 'value') === user);
        assert.ok(button, `a button for ${user} on the login page`);
        form.push(['user', user]);
        const action = new URL(attribute(formTag[0], 'action'), login.url);
        const after = await this.follow(await this.send(action, form), stopAt);
        assert.ok(after.landed, `back at the client, not ${after.page?.status} ${after.page?.body.slice(0, 300)}`);
        return { callback: after.landed, via: [login.url, ...after.seen] };
    }
}

/** Serves a Client ID Metadata Document over HTTPS on loopback; its URL is the client_id. */
async function serveMetadataDocument(redirectUrl) {
    const fetched = [];
    const server = createServer(
        { cert: readFileSync(certPath), key: readFileSync(keyPath) },
        (request, response) => {
            fetched.push({ path: request.url, agent: request.headers['user-agent'] });
            if (request.url !== '/client.json') {
                response.writeHead(404).end();
                return;
            }
            response.writeHead(200, { 'content-type': 'application/json' });
            response.end(
                JSON.stringify({
                    client_id: url,
                    client_name: 'idjag TypeScript interop (metadata document)',
                    redirect_uris: [redirectUrl],
                    grant_types: ['authorization_code', REFRESH],
                    response_types: ['code'],
                    token_endpoint_auth_method: 'none',
                }),
            );
        },
    );
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${server.address().port}/client.json`;
    return { url, fetched, close: () => new Promise((resolve) => server.close(resolve)) };
}

function textOf(result) {
    assert.equal(result.isError ?? false, false, JSON.stringify(result));
    return result.content.map((block) => block.text).join('');
}

function connectTransport(provider, fetchFn) {
    return new StreamableHTTPClientTransport(new URL(notes.url), { authProvider: provider, fetch: fetchFn });
}

/** One sign-in through the gateway, tools through the ID-JAG upstream, a refresh. */
async function run(label, { useMetadataDocument }) {
    // Any loopback port matches a registered loopback redirect URI (RFC 8252 §7.3); nothing
    // listens there: the browser stops at the redirect.
    const redirectUrl = `http://127.0.0.1:${49152 + Math.floor(Math.random() * 16000)}/callback`;
    const document = useMetadataDocument ? await serveMetadataDocument(redirectUrl) : undefined;
    const provider = new InteractiveProvider({ redirectUrl, clientMetadataUrl: document?.url });
    const { fetchFn, requests } = recordingFetch(
        (url) => url.pathname.startsWith('/oauth/') || url.pathname.startsWith('/.well-known/'),
    );
    try {
        // 1. The SDK meets the 401, discovers, gets a client id and sends the user off.
        const first = new Client({ name: 'idjag-ts-gateway-interop', version: '1.0.0' });
        await assert.rejects(first.connect(connectTransport(provider, fetchFn)), (error) => {
            assert.ok(error instanceof UnauthorizedError, String(error));
            return true;
        });
        const asked = requests.map((r) => `${r.method} ${r.url}`);
        assert.ok(asked.includes(`GET ${notes.resource_metadata}`), `RFC 9728 metadata read: ${asked}`);
        assert.ok(
            asked.some((a) => a.startsWith(`GET ${gateway.issuer}/.well-known/oauth-authorization-server`)),
            `RFC 8414 metadata read: ${asked}`,
        );
        ok(`${label}: the 401 led the SDK to the route's RFC 9728 and the gateway's RFC 8414 metadata`);

        const registrations = requests.filter((r) => r.url === gateway.registration_endpoint);
        if (useMetadataDocument) {
            assert.equal(registrations.length, 0, 'no registration with a metadata document');
            assert.equal(provider.client.client_id, document.url);
            ok(`${label}: the SDK used its metadata document URL as client_id (${document.url})`);
        } else {
            assert.equal(registrations.length, 1, 'one RFC 7591 registration');
            const sent = JSON.parse(registrations[0].body);
            assert.deepEqual(sent.redirect_uris, [redirectUrl]);
            assert.match(provider.client.client_id, /^\S+$/);
            assert.equal(provider.client.client_secret, undefined, 'a public client');
            ok(`${label}: the SDK registered (RFC 7591) and got client_id ${provider.client.client_id.slice(0, 16)}...`);
        }
        const clientId = provider.client.client_id;

        const authorize = provider.authorizationUrl;
        assert.ok(authorize, 'the SDK sent the user to the authorization endpoint');
        assert.equal(`${authorize.origin}${authorize.pathname}`, gateway.authorization_endpoint);
        const query = authorize.searchParams;
        assert.equal(query.get('response_type'), 'code');
        assert.equal(query.get('client_id'), clientId);
        assert.equal(query.get('redirect_uri'), redirectUrl);
        assert.equal(query.get('code_challenge_method'), 'S256');
        assert.match(query.get('code_challenge'), /^[\w-]{43}$/);
        assert.equal(query.get('resource'), notes.url);
        assert.equal(query.get('state'), provider.expectedState);
        ok(`${label}: authorization request with PKCE S256, state and resource ${notes.url}`);

        // 2. The browser: gateway -> IdP login page (alice) -> gateway callback -> the client.
        const { callback, via } = await new Browser().signIn(authorize, USER, redirectUrl);
        assert.equal(callback.searchParams.get('state'), provider.expectedState);
        assert.equal(callback.searchParams.get('iss'), gateway.issuer);
        assert.match(callback.searchParams.get('code') ?? '', /^\S+$/);
        assert.ok(via.some((u) => u.href.startsWith(`${gateway.issuer}/oauth/callback`)), 'through the gateway callback');
        if (useMetadataDocument) {
            assert.ok(document.fetched.some((f) => f.path === '/client.json'), 'the gateway fetched the document');
        }
        ok(`${label}: ${USER} signed in at the IdP's login page; code and iss back at ${redirectUrl}`);

        const transport = connectTransport(provider, fetchFn);
        await transport.finishAuth(callback.searchParams);
        const redeemed = requests.filter((r) => r.url === gateway.token_endpoint);
        assert.equal(redeemed.length, 1);
        assert.equal(redeemed[0].form.get('grant_type'), 'authorization_code');
        assert.equal(redeemed[0].form.get('client_id'), clientId);
        assert.equal(redeemed[0].form.get('resource'), notes.url);
        assert.match(redeemed[0].form.get('code_verifier'), /^[\w.~-]{43,128}$/);
        assert.equal(provider.saved.token_type.toLowerCase(), 'bearer');
        assert.match(provider.saved.refresh_token ?? '', /^\S+$/, 'a refresh token');
        ok(`${label}: finishAuth redeemed the code at the gateway (access and refresh tokens)`);

        // 3. Tools through the ID-JAG upstream, with the gateway's access token.
        const client = new Client({ name: 'idjag-ts-gateway-interop', version: '1.0.0' });
        await client.connect(transport);
        const tools = (await client.listTools()).tools.map((tool) => tool.name).sort();
        assert.deepEqual(tools, ['add_note', 'list_notes'], 'alice (engineering): every tool but delete_*');
        ok(`${label}: tools/list through the gateway: ${tools.join(', ')}`);
        const text = `typescript ${label} ${randomBytes(4).toString('hex')}`;
        const added = textOf(await client.callTool({ name: 'add_note', arguments: { text } }));
        const number = added.match(/^Note (\d+) added by alice\.$/)?.[1];
        assert.ok(number, `add_note answered "${added}"`);
        ok(`${label}: add_note answered "${added}"`);
        const listed = textOf(await client.callTool({ name: 'list_notes', arguments: {} }));
        assert.ok(listed.split('\n').includes(`${number}. ${text} (by alice)`), listed);
        ok(`${label}: list_notes shows note ${number} by alice`);

        // 4. Force a refresh: the access token is no longer good; the 401 makes the SDK use
        // the refresh token (rotated by the gateway) and retry.
        const before = provider.saved;
        provider.saved = { ...before, access_token: 'revoked-access-token' };
        const again = textOf(await client.callTool({ name: 'list_notes', arguments: {} }));
        assert.ok(again.split('\n').includes(`${number}. ${text} (by alice)`), again);
        const refreshes = requests.filter((r) => r.url === gateway.token_endpoint && r.form.get('grant_type') === REFRESH);
        assert.equal(refreshes.length, 1, 'one refresh_token grant');
        assert.equal(refreshes[0].form.get('refresh_token'), before.refresh_token);
        assert.equal(refreshes[0].form.get('client_id'), clientId);
        assert.notEqual(provider.saved.access_token, 'revoked-access-token');
        assert.notEqual(provider.saved.refresh_token, before.refresh_token, 'the refresh token rotated');
        ok(`${label}: after a forced refresh (refresh_token grant, rotated) list_notes answers again`);
        await client.close();

        // add_note, list_notes, list_notes after the refresh (the 401 is before authorization).
        console.log(`audit-expect ${clientId} ${USER} notes 3`);
    } finally {
        await document?.close();
    }
}

await run('metadata-document', { useMetadataDocument: true });
await run('dynamic-registration', { useMetadataDocument: false });
summary();
