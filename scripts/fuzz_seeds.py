#!/usr/bin/env python3
"""Seed the fuzz corpora from the Wycheproof vectors in ../shared (never copied into git).

Usage: python3 scripts/fuzz_seeds.py <vectors-dir> <corpus-root>
"""
import base64
import hashlib
import json
import os
import sys

vectors, root = sys.argv[1], sys.argv[2]


def put(target, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def b64(segment):
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


jws = json.load(open(os.path.join(vectors, "json_web_signature_test.json")))
for group in jws["testGroups"]:
    for key in ("public", "private"):
        if key in group:
            put("jwks", json.dumps({"keys": [group[key]]}))
    for case in group["tests"]:
        token = case["jws"]
        put("compact_jws", token)
        put("validate", token)
        parts = token.split(".")
        if len(parts) == 3:
            try:
                put("header", b64(parts[0]))
                put("claims", b64(parts[1]))
            except Exception:
                pass

jwk = json.load(open(os.path.join(vectors, "json_web_key_test.json")))
for group in jwk["testGroups"]:
    for key in ("public", "private"):
        if key in group:
            put("jwks", json.dumps(group[key]))

# Claim sets shaped like real ID-JAGs, so the fuzzer starts from the interesting region.
put("claims", json.dumps({"iss": "https://idp.example", "sub": "alice", "aud": ["https://as.example"],
                          "client_id": "c", "jti": "j", "iat": 1700000000, "exp": 1700000300,
                          "resource": "https://mcp.example/", "scope": "a b",
                          "authorization_details": [{"type": "t"}], "cnf": {"jkt": "x"}}))
put("form", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c&scope=x+y")
put("form", "client_id=gw+client&client_secret=s3%3Acr3t&code=")

# JSON-RPC messages for the strict reader: each kind, and the parser-differential shapes it refuses.
for message in [
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_note","arguments":{"text":"hi","tags":["a"]}}}',
    '{"jsonrpc":"2.0","id":"a","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},'
    '"clientInfo":{"name":"c","version":"1"},"_meta":{"progressToken":1}}}',
    '{"jsonrpc":"2.0","method":"notifications/initialized"}',
    '{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"t","inputSchema":{"type":"object"}}]}}',
    '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error","data":{}}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","Name":"b"}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"b","argument\\u017f":{"\\u212aind":1,"kind":2}}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call\\u0000","params":{"name":"a\\u0000b"}}',
    '[{"jsonrpc":"2.0","id":1,"method":"ping"}]',
    '{"jsonrpc":"2.0","id":1,"method":"ping","result":{},"error":{"code":1,"message":"m"}}',
]:
    put("jsonrpc", message)
    put("gateway_message", message)

# SSE streams for the gateway's tools/list filter: plain, escaped, folded, twice, cut.
for stream in [
    'id: 1\ndata: {"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"ab"},{"name":"abc"}]}}\n\n',
    'data: {"jsonrpc":"2.0","id":2,"result":{"\\u0074ools":[{"name":"ab"},{"name":"c"}]}}\r\n\r\n',
    'event: message\ndata: {"jsonrpc":"2.0","id":2,\ndata: "result":{"Tool\u017f":[{"name":"c"}]}}\n\n',
    'data: {"jsonrpc":"2.0","id":2,"result":{"tools":[],"tools":[{"name":"c"}]}}\n\nid: 2\ndata: {"jso',
    ': comment\nretry: 10\nevent: ping\ndata: {"tools":[]}\n\ndata: {"jsonrpc":"2.0","method":"notifications/tools/list_changed"}\n\n',
]:
    put("gateway_message", stream)
