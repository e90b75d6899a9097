"""What the interop clients share: the check counter and its messages, and an in-memory token
storage for the SDK's auth providers."""


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
