"""The HTTP API: an app factory (`app`), one router per resource (`routers`) with its shapes beside it
(`schemas`), who may call what (`dependencies`, `auth`) and one error body (`errors`)."""

from starter.api.app import create_app

__all__ = ["create_app"]
