// Starts oauth2-mock-server (pinned in package.json, written by others) as an upstream OpenID
// provider on loopback, for the idjag-issuer bridge's tests and scripts/interop.sh.
//
// Usage: node serve.mjs --port PORT [--claims FILE] [--claim-issuer URL] [--alg RS256|ES256]
//
// - The password grant (`grant_type=password&username=alice&client_id=app`) answers with an
//   ID token whose `sub` is the username and whose `aud` is the client id (oauth2-mock-server
//   puts the client id in `aud` and always "johndoe" in `sub`; this script sets `sub`).
// - A refresh token it issued keeps its user: the refresh_token grant answers with an ID
//   token for that user.
// - --claims FILE: a JSON object, username -> extra ID-token claims (groups, oid, tid, ...).
// - --claim-issuer URL: every token claims to come from URL while this server signs it with
//   its own key: an attacker's IdP minting tokens in a trusted issuer's name.
//
// Prints "issuer <url>" on the first line of stdout once it listens.

import { readFileSync } from 'node:fs';
import { OAuth2Server } from 'oauth2-mock-server';

const args = process.argv.slice(2);
function option(name) {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
}

const port = Number(option('--port') ?? 0);
const claims = option('--claims') ? JSON.parse(readFileSync(option('--claims'), 'utf8')) : {};
const claimIssuer = option('--claim-issuer');
const alg = option('--alg') ?? 'RS256';

const server = new OAuth2Server();
await server.issuer.keys.generate(alg);

// Refresh token -> the user it was issued for.
const refreshUsers = new Map();

function userOf(body) {
    if (body?.grant_type === 'password') return body.username;
    if (body?.grant_type === 'refresh_token') return refreshUsers.get(body.refresh_token);
    return undefined;
}

server.service.on('beforeTokenSigning', (token, req) => {
    const user = userOf(req.body);
    // Access tokens carry `scope` (possibly undefined); ID tokens do not.
    const isIdToken = !('scope' in token.payload);
    if (isIdToken && user !== undefined) {
        token.payload.sub = user;
        Object.assign(token.payload, claims[user] ?? {});
    }
    if (claimIssuer !== undefined) {
        token.payload.iss = claimIssuer;
    }
});

server.service.on('beforeResponse', (response, req) => {
    const user = userOf(req.body);
    if (user !== undefined && typeof response.body.refresh_token === 'string') {
        refreshUsers.set(response.body.refresh_token, user);
    }
});

await server.start(port, '127.0.0.1');
console.log(`issuer ${server.issuer.url}`);

for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, async () => {
        await server.stop();
        process.exit(0);
    });
}
