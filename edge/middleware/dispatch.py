"""Route every API path to the REST gateway before path patterns get a say."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class ApiDispatch:
    """Send every HTTP request under `/v1/` to the REST gateway, whatever characters it holds.

    Starlette's path patterns do not match every decoded path (a newline, for one), and an
    API path must never fall through to the static files.
    """

    def __init__(self, app: ASGIApp, api: ASGIApp) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/v1/"):
            await self.api(scope, receive, send)
            return
        await self.app(scope, receive, send)
