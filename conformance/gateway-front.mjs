// The two loopback pieces that put idjag-gateway in front of the conformance server for the
// suite's server scenarios (scripts/conformance.sh):
//
// - an IdP: a fresh ES256 key, its JWK Set at /jwks, and one OIDC ID token it signs for the
//   gateway's client id (the user "conformance");
// - a front door: every request it gets goes to the gateway unchanged (method, path, header
//   names, values and order, body, streamed both ways), with that ID token as its
//   `Authorization`, the way an agent that signed in would send it.
//
// The suite's server scenarios send no token and have no option to add one; the gateway
// authenticates every route. The front door lets the scenarios reach the gateway through its
// real inbound authentication instead of a configuration that turns it off.
//
// Usage: node gateway-front.mjs IDP_PORT FRONT_PORT GATEWAY_PORT CLIENT_ID
// Prints "ready" once both listen; runs until killed.
import { createServer, request } from "node:http";
import { generateKeyPairSync, sign, randomUUID } from "node:crypto";

const [idpPort, frontPort, gatewayPort, clientId] = process.argv.slice(2);
if (!clientId) {
  console.error("usage: node gateway-front.mjs IDP_PORT FRONT_PORT GATEWAY_PORT CLIENT_ID");
  process.exit(2);
}
const issuer = `http://127.0.0.1:${idpPort}`;

const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const kid = randomUUID();
const jwks = JSON.stringify({
  keys: [{ ...publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" }],
});

const b64url = (data) => Buffer.from(data).toString("base64url");
const now = Math.floor(Date.now() / 1000);
const header = b64url(JSON.stringify({ alg: "ES256", typ: "JWT", kid }));
const claims = b64url(
  JSON.stringify({ iss: issuer, sub: "conformance", aud: clientId, iat: now, exp: now + 3600 }),
);
const signature = sign("sha256", Buffer.from(`${header}.${claims}`), {
  key: privateKey,
  dsaEncoding: "ieee-p1363",
});
const idToken = `${header}.${claims}.${b64url(signature)}`;

const idp = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/jwks") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(jwks);
  } else {
    res.writeHead(404);
    res.end();
  }
});

const front = createServer((req, res) => {
  const headers = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i].toLowerCase() !== "authorization") {
      headers.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
    }
  }
  headers.push("Authorization", `Bearer ${idToken}`);
  const upstream = request(
    { host: "127.0.0.1", port: gatewayPort, method: req.method, path: req.url, headers, setHost: false },
    (answer) => {
      res.writeHead(answer.statusCode, answer.statusMessage, answer.rawHeaders);
      answer.pipe(res);
    },
  );
  upstream.on("error", (error) => {
    console.error(`gateway-front: the gateway did not answer: ${error.message}`);
    if (!res.headersSent) res.writeHead(599);
    res.destroy();
  });
  // A client that goes away (an SSE stream it closes) closes the gateway's side too.
  res.on("close", () => upstream.destroy());
  req.pipe(upstream);
});

let listening = 0;
const ready = () => {
  if (++listening === 2) console.log("ready");
};
idp.listen(Number(idpPort), "127.0.0.1", ready);
front.listen(Number(frontPort), "127.0.0.1", ready);
