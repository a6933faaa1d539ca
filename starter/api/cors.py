"""CORS for the codec alone: the Temporal web UI calls `/codec` from a browser; nothing else is meant to be
called from a web page, so no other route answers a preflight or carries `Access-Control-*` headers."""

from __future__ import annotations

from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

CODEC_PREFIX = "/codec"


class CodecCors:
    """Starlette's CORS middleware in front of `/codec` and its routes; every other path goes past it."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["POST"],
            allow_headers=["Authorization", "Content-Type", "X-Namespace"],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == CODEC_PREFIX or path.startswith(CODEC_PREFIX + "/")):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
