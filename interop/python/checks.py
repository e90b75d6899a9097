"""What the interop clients share: the check counter and its messages, the runner that reports
the first failure, the RFC 8693 request for an ID-JAG, and an in-memory token storage for the
SDK's auth providers."""

import asyncio
import sys
import traceback

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ID_JAG = "urn:ietf:params:oauth:token-type:id-jag"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"


class Failed(Exception):
    """A check that did not hold."""


class Checks:
    """How many checks held so far."""

    count = 0


def ok(what: str) -> None:
    """One check held."""
    Checks.count += 1
    print(f"ok - {what}", flush=True)


def expect(condition: bool, what: str) -> None:
    """Fails with `what` unless `condition` holds."""
    if not condition:
        raise Failed(what)


def run(main) -> None:
    """Runs the coroutine function `main`; on the first failure prints what failed (an
    unexpected error with its traceback) and exits 1."""
    try:
        asyncio.run(main())
    except Exception as error:
        leaf = error
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        if not isinstance(leaf, Failed):
            traceback.print_exception(leaf)
        print(f"FAIL: {leaf}" if isinstance(leaf, Failed) else f"FAIL: {type(leaf).__name__}: {leaf}", file=sys.stderr)
        sys.exit(1)


def id_jag_request(id_token: str, audience: str, resource: str, scope: str) -> dict:
    """The form of leg 1 (RFC 8693): the user's ID token for an ID-JAG."""
    return {
        "grant_type": TOKEN_EXCHANGE,
        "requested_token_type": ID_JAG,
        "audience": audience,
        "resource": resource,
        "subject_token": id_token,
        "subject_token_type": ID_TOKEN,
        "scope": scope,
    }


class MemoryStorage:
    """The SDK's `TokenStorage`, in memory."""

    def __init__(self) -> None:
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens) -> None:
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info) -> None:
        self.client_info = client_info
