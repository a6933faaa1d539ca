"""Every error the API answers with has one body: `{"error": {"code", "message", "fields"?}}` (docs/api.md).

The handlers below turn what the layers underneath raise (policy refusals, unknown ids, an unreachable
Temporal or ledger: the table of `starter.desk.failures`, which the CLI reads too) and what FastAPI itself
refuses (validation, unknown routes) into that body with the contract's status, so no route spells out an
error itself and nothing reaches the client as a bare 500. `starter.api.gate` answers with the same body.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from starter.api.schemas.common import ErrorBody
from starter.desk.failures import FAILURE_TYPES, codes_by_status, failure_of
from starter.desk.validation import validation_items

log = logging.getLogger("refund_desk.api")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = dict(headers or {})


def error_response(error: ApiError) -> JSONResponse:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.fields is not None:
        body["fields"] = error.fields
    return JSONResponse({"error": body}, status_code=error.status, headers=error.headers)


HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    429: "rate_limited",
}


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the contract's body."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{"field": field, "message": message} for field, message in validation_items(exc.errors())]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:3])
        return error_response(
            ApiError(422, "validation_error", f"the request is not valid ({summary})", fields=fields)
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's answer to a body it cannot even decode (not UTF-8)
            fields = [{"field": "body", "message": "the body is not JSON in UTF-8"}]
            return error_response(
                ApiError(422, "validation_error", "the request is not valid (body: not JSON)", fields=fields)
            )
        code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = f"{exc.detail}: {request.method} {request.url.path}"
        return error_response(ApiError(exc.status_code, code, message, headers=exc.headers))

    async def from_the_table(request: Request, exc: Exception) -> JSONResponse:
        """What the desk's layers raise, answered as `starter.desk.failures` says. A failure of the
        caller's own setup in the CLI's terms (`usage`: a setting, a key, a ledger never migrated) is the
        server's own misconfiguration here: logged with its trace, answered as any other 500."""
        failure = failure_of(exc)
        if failure is None or failure.usage:
            return await unexpected(request, exc)
        if failure.status >= 500:
            cause = exc.orig if isinstance(exc, DBAPIError) else exc
            log.warning("%s: %s (%s: %s)", failure.code, failure.message, type(exc).__name__, cause)
        return error_response(ApiError(failure.status, failure.code, failure.message))

    for kind in FAILURE_TYPES:
        app.add_exception_handler(kind, from_the_table)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        """Anything the table does not know is a bug: logged with its trace, answered 500."""
        failure = failure_of(exc)
        log.error("unhandled error (%s)", "a bug" if failure is None else failure.code, exc_info=exc)
        return error_response(ApiError(500, "internal_error", "something went wrong on our side"))


API_CODES: dict[int, list[str]] = {
    401: ["unauthorized"],
    403: ["forbidden", "token_scope"],
    404: ["customer_not_found", "delivery_not_found", "not_found", "webhook_endpoint_not_found"],
    405: ["method_not_allowed"],
    408: ["request_timeout"],
    413: ["payload_too_large"],
    409: ["idempotency_key_in_use"],
    422: [
        "idempotency_key_invalid",
        "idempotency_key_not_accepted",
        "idempotency_key_reused",
        "invalid_cursor",
        "payload_undecodable",
        "unknown_event_type",
        "validation_error",
        "webhook_url_invalid",
        "webhook_url_loops_back",
    ],
    429: ["rate_limited"],
    503: ["codec_unavailable"],
}
"""The codes the API itself answers with, beside the desk's (`starter.desk.failures`)."""

MEANING = {
    401: "Missing, malformed, wrongly signed or expired bearer token.",
    403: "The token's role may not do this.",
    404: "No such resource, or not one the caller may see.",
    408: "The request's body did not arrive in time; the connection is closed.",
    409: "Conflicts with the current state.",
    413: "The request's body is over this route's limit.",
    422: "Invalid request (`validation_error`, with `fields`) or refused by the policy (the rule's code).",
    429: "Over the caller's request rate; `Retry-After` says in how many seconds to try again.",
    503: "Temporal or the ledger is unreachable, or the workflow did not answer in time.",
}


def error_codes(status: int) -> list[str]:
    """Every code an error of `status` may carry."""
    return sorted({*codes_by_status().get(status, []), *API_CODES.get(status, [])})


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route: each error status with the error body, what it means, and the codes
    its `error.code` may take."""
    return {
        status: {
            "model": ErrorBody,
            "description": f"{MEANING[status]} Codes: "
            + ", ".join(f"`{code}`" for code in error_codes(status))
            + ".",
        }
        for status in statuses
    }


AUTH_ERRORS = (401, 403)
ON_COMPLAINT = documented(*AUTH_ERRORS, 404, 409, 422, 503)
"""Every action on a complaint: unknown or another's (404), not now (409), refused (422), no worker (503)."""
