"""The HTTP API: an app factory (`app.create_app`), one router per resource (`routers`) with its shapes
beside it (`schemas`), who may call what (`dependencies`, `auth`) and one error body (`errors`).

Nothing is imported here, so that the CLI can read the API's settings (`settings`) or mint a token
(`auth`) without loading FastAPI and every route."""
