"""Who before what, over real HTTP: the caller and their role are known before a body is read, and each
route reads no more body, and no deeper JSON, than it needs (`starter.api.gate`, docs/api.md "Limits").

"Before the body is read" is tested literally: the request's head announces a body of megabytes and not a
byte of it is sent, so an answer can only come from checks made without it. Every refusal is also checked
for having changed nothing in the ledger. Also here: per-caller rate limits (429), CORS on `/codec` only, and
no redirect that would echo the request's `Host` header. Nothing is mocked: uvicorn on a loopback port, the
real desk, a worker on the time-skipping Temporal server, a real SQLite ledger.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import APIRouter

from policy.models import Role
from starter.api.app import create_app
from starter.api.gate import RoutePolicy, admitted_roles, route_policies
from starter.api.limits import (
    CODEC_BODY_BYTES,
    MAX_JSON_DEPTH,
    MAX_JSON_VALUES,
    SMALL_BODY_BYTES,
)
from starter.api.schemas.common import MAX_BODY_BYTES
from starter.api.settings import ApiSettings
from starter.desk import ComplaintDesk
from tests.conftest import JWT_SECRET, Api, serving
from tests.test_api import ENDPOINTS, error_of, file_complaint, new_customer, order_body
from tests.test_hostile_input import settled, snapshot

Json = dict[str, Any]

ANSWER_WITHIN = 5.0
"""Seconds to wait for an answer that must not wait for the body."""


# ----------------------------------------------------------------------------------------- raw HTTP


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], Json]:
    """One HTTP/1.1 response with a Content-Length: status, headers (lower-cased names), JSON body."""
    status_line = await reader.readline()
    assert status_line, "the connection closed without an answer"
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, json.loads(body)


async def answer_without_the_body(
    api: Api, method: str, path: str, headers: dict[str, str], declared: int
) -> tuple[int, dict[str, str], Json]:
    """Send only the head of a request announcing `declared` bytes of JSON body, and read the answer."""
    address = urlsplit(api.base_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        announced = {**headers, "Content-Type": "application/json", "Content-Length": str(declared)}
        writer.write(head(method, path, announced))
        await writer.drain()
        try:
            async with asyncio.timeout(ANSWER_WITHIN):
                return await read_response(reader)
        except TimeoutError:
            pytest.fail(f"{method} {path}: no answer in {ANSWER_WITHIN} s without the body: it waited for it")
    finally:
        writer.close()


def bearer(api: Api, role: Role, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token(role, sub)}"}


# ---------------------------------------------------------------------------------- who before what

ALMOST_15_MB = 14_900_000


@pytest.mark.parametrize(
    ("path", "declared"),
    [
        ("/v1/orders", ALMOST_15_MB),
        ("/v1/complaints", ALMOST_15_MB),
        ("/v1/complaints", MAX_BODY_BYTES + 1),
        ("/codec/decode", ALMOST_15_MB),
        ("/v1/complaints/ord-1.major_defect.0badc0de/review", ALMOST_15_MB),
    ],
    ids=["order", "complaint", "complaint-over-its-limit", "codec", "review"],
)
async def test_an_anonymous_request_is_401_before_its_body_is_read(
    api: Api, path: str, declared: int
) -> None:
    """An anonymous 14.9 MB order used to be read and parsed whole before its 401; now the 401 comes
    without a byte of the body sent. A body over the route's limit is 401 too, not 413: who, then what."""
    before = await settled(api.desk.ledger)
    status, headers, body = await answer_without_the_body(api, "POST", path, {}, declared)
    assert (status, body["error"]["code"]) == (401, "unauthorized"), body
    assert headers["www-authenticate"] == "Bearer"
    assert await snapshot(api.desk.ledger) == before


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/v1/orders", Role.CUSTOMER),
        ("/v1/orders", Role.SUPPORT),
        ("/v1/complaints", Role.SUPPORT),
        ("/codec/decode", Role.BACKEND),
        ("/v1/complaints/ord-1.major_defect.0badc0de/access", Role.BACKEND),
    ],
)
async def test_a_role_the_route_does_not_admit_is_403_before_its_body_is_read(
    api: Api, path: str, role: Role
) -> None:
    before = await settled(api.desk.ledger)
    status, _, body = await answer_without_the_body(
        api, "POST", path, bearer(api, role, "cust-1"), ALMOST_15_MB
    )
    assert (status, body["error"]["code"]) == (403, "forbidden"), body
    assert await snapshot(api.desk.ledger) == before


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [(None, 401, "unauthorized"), (Role.CUSTOMER, 403, "forbidden"), (Role.BACKEND, 422, "validation_error")],
)
async def test_malformed_json_is_401_or_403_unless_the_caller_may_send_it(
    api: Api, role: Role | None, status: int, code: str
) -> None:
    """A customer's malformed JSON on the backend's route was 422, as was an anonymous caller's: the body
    was parsed before the caller was known. Now only the backend, whom the route admits, hears about it.
    (tests/test_api.py's matrix sends `{}`, which parsed, so it saw the 403 already.)"""
    headers = {"Content-Type": "application/json"}
    if role is not None:
        headers |= bearer(api, role, "cust-1")
    response = await api.client(headers).post("/v1/orders", content=b'{"order_id": "x", not json')
    assert error_of(response, status)["code"] == code


# --------------------------------------------------------------------------------------- body limits


def _order_of_size(size: int) -> bytes:
    """An order (otherwise valid) whose product name pads the JSON to `size` bytes."""
    body = order_body(new_customer())
    body["product"]["name"] = ""
    empty = len(json.dumps(body).encode())
    body["product"]["name"] = "x" * (size - empty)
    encoded = json.dumps(body).encode()
    assert len(encoded) == size
    return encoded


async def test_an_order_over_64_kib_is_413_before_it_is_read_and_one_under_is_validated(api: Api) -> None:
    """Only filing a complaint needs megabytes: every other route takes 64 KiB, refused at once from its
    Content-Length, and counted as it comes when there is none (chunked)."""
    before = await settled(api.desk.ledger)
    status, _, body = await answer_without_the_body(
        api, "POST", "/v1/orders", bearer(api, Role.BACKEND, "shop"), SMALL_BODY_BYTES + 1
    )
    assert (status, body["error"]["code"]) == (413, "payload_too_large"), body

    backend = api.backend()
    json_headers = {"Content-Type": "application/json"}

    async def chunked(data: bytes) -> Any:
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]

    streamed = await backend.post("/v1/orders", content=chunked(_order_of_size(SMALL_BODY_BYTES + 1)))
    assert "content-length" not in streamed.request.headers
    assert error_of(streamed, 413)["code"] == "payload_too_large"
    fits = await backend.post("/v1/orders", content=_order_of_size(SMALL_BODY_BYTES), headers=json_headers)
    assert "body.product.name" in [f["field"] for f in error_of(fits, 422)["fields"]], "read and validated"
    assert await snapshot(api.desk.ledger) == before


async def test_filing_a_complaint_still_takes_megabytes_and_the_codec_what_a_history_event_needs(
    api: Api,
) -> None:
    """The complaint's limit is the evidence's (about 15 MB): a 1 MB description is read and refused by
    validation, not by size. The codec takes a few megabytes of payloads, and not more."""
    customer_id = new_customer()
    before = await settled(api.desk.ledger)
    body = {"order_id": "ord-absent", "kind": "major_defect", "description": "x" * 1_000_000}
    filed = await api.customer(customer_id).post("/v1/complaints", json=body)
    assert error_of(filed, 422)["fields"][0]["field"] == "body.description"

    support = api.support()
    payload = {"metadata": {"encoding": "YmluYXJ5L3BsYWlu"}, "data": "A" * 2_000_000}
    decoded = await support.post("/codec/decode", json={"payloads": [payload]})
    assert decoded.status_code == 200, decoded.text[:300]
    status, _, refused = await answer_without_the_body(
        api, "POST", "/codec/decode", bearer(api, Role.SUPPORT, "alice"), CODEC_BODY_BYTES + 1
    )
    assert (status, refused["error"]["code"]) == (413, "payload_too_large")
    assert await snapshot(api.desk.ledger) == before


def _nested(depth: int) -> bytes:
    return b'{"order_id": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        ("/v1/orders", _nested(MAX_JSON_DEPTH + 1), f"nests deeper than {MAX_JSON_DEPTH} levels"),
        ("/v1/orders", b'{"a": ' * 5000 + b"1" + b"}" * 5000, f"nests deeper than {MAX_JSON_DEPTH} levels"),
        ("/v1/complaints", _nested(7_000_000), f"holds more than {MAX_JSON_VALUES} values"),
        ("/v1/complaints", b'{"evidence": [' + b"[]," * 4_000_000 + b"[]]}", "holds more than"),
        ("/v1/complaints", b'{"description": "' + b'\\"' * 1_000_000 + b'"}', "holds more than"),
    ],
    ids=["17-deep", "5000-deep-objects", "7M-deep", "4M-values", "1M-escapes"],
)
async def test_json_too_deep_or_too_large_is_422_on_the_body_before_it_is_parsed(
    api: Api, path: str, content: bytes, message: str
) -> None:
    """Deep JSON used to reach Python's recursive parser (a RecursionError, answered as "not JSON") or,
    under its limit, pydantic; four million tiny values took two seconds of CPU to refuse. Now the body's
    shape is checked on its bytes first, and the answer says what is wrong with it."""
    client = api.backend() if path == "/v1/orders" else api.customer(new_customer())
    before = await settled(api.desk.ledger)
    began = time.monotonic()
    response = await client.post(path, content=content, headers={"Content-Type": "application/json"})
    error = error_of(response, 422)
    assert error["code"] == "validation_error"
    assert len(error["fields"]) == 1 and error["fields"][0]["field"] == "body", error
    assert message in error["fields"][0]["message"], error
    assert await snapshot(api.desk.ledger) == before
    print(f"{path} {len(content)} bytes refused in {time.monotonic() - began:.3f} s")


async def test_json_as_deep_as_allowed_is_passed_on_to_validation(api: Api) -> None:
    response = await api.backend().post(
        "/v1/orders", content=_nested(MAX_JSON_DEPTH - 1), headers={"Content-Type": "application/json"}
    )
    fields = [f["field"] for f in error_of(response, 422)["fields"]]
    assert "body.order_id" in fields and "body" not in fields


# ---------------------------------------------------------------------------------- the route table


def test_every_route_the_api_serves_has_its_roles_from_its_own_dependencies() -> None:
    """The gate's table is derived from the routes' `allow(...)` declarations: it agrees with docs/api.md's
    table (`tests.test_api.ENDPOINTS`) and covers every operation in the OpenAPI document."""
    app = create_app(object(), ApiSettings(jwt_secret=JWT_SECRET))  # type: ignore[arg-type]
    policies: list[RoutePolicy] = app.state.route_policies
    table = {(method, p.route.path): p.roles for p in policies for method in p.route.methods or ()}
    for method, template, roles in ENDPOINTS:
        assert table[(method, template)] == frozenset(roles), (method, template)
    assert table[("POST", "/codec/decode")] == frozenset({Role.SUPPORT})
    assert table[("GET", "/healthz")] is None
    operations = {(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item}
    assert operations == set(table)


def test_a_route_that_declares_no_roles_and_is_not_public_stops_the_app_from_starting() -> None:
    router = APIRouter()

    @router.get("/v1/forgotten")
    async def forgotten() -> None: ...

    assert admitted_roles(router.routes[0]) is None  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="forgotten"):
        route_policies(router.routes)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- rate limits


async def test_a_caller_over_its_rate_is_429_with_retry_after_and_others_are_not(desk: ComplaintDesk) -> None:
    """A token bucket per role and sub: `rate_burst` at once, then `rate_limit` a second. The refused
    request is answered before its body is read and writes nothing; another caller is not slowed."""
    # 5 s to refill one request: a busy machine does not refill the bucket between the test's requests.
    async with serving(desk, rate_limit=0.2, rate_burst=2) as api:
        backend = api.backend()
        customer_id = new_customer()
        assert (await backend.post("/v1/orders", json=order_body(customer_id))).status_code == 201
        assert (await backend.get("/v1/complaints")).status_code == 200
        before = await settled(api.desk.ledger)

        refused = await backend.post("/v1/orders", json=order_body(customer_id))

        error = error_of(refused, 429)
        assert error["code"] == "rate_limited"
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 5, "one request refills in 5 s, less what refilled meanwhile"
        assert await snapshot(api.desk.ledger) == before
        assert (await api.backend("another-shop").get("/v1/complaints")).status_code == 200
        assert (await api.customer(customer_id).get("/v1/complaints")).status_code == 200
        await asyncio.sleep(retry_after)
        assert (await backend.get("/v1/complaints")).status_code == 200


async def test_the_default_rate_lets_32_requests_in_flight_through(api: Api) -> None:
    """The benchmark's load (bench/api.py: 32 in flight on one token) is not throttled by default."""
    complaint = await file_complaint(api)
    support = api.support()
    url = f"/v1/complaints/{complaint['complaint_id']}"
    for _ in range(4):
        answers = await asyncio.gather(*(support.get(url) for _ in range(32)))
        assert {answer.status_code for answer in answers} == {200}


# -------------------------------------------------------------------------------- CORS and redirects

UI_ORIGIN = "http://localhost:8233"


def _cors_headers(response: httpx.Response) -> list[str]:
    return [name for name in response.headers if name.lower().startswith("access-control-")]


async def test_cors_answers_for_the_codec_only(api: Api) -> None:
    """The Temporal UI's origin may call `/codec` from a browser; no other route answers a preflight or
    carries Access-Control-* headers, so no web page can read the API's answers with a user's token."""
    http = api.client()
    preflight = {"Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST"}
    codec = await http.options("/codec/decode", headers=preflight)
    assert codec.status_code == 200
    assert codec.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    decoded = await api.support().post("/codec/decode", json={"payloads": []}, headers={"Origin": UI_ORIGIN})
    assert decoded.headers["Access-Control-Allow-Origin"] == UI_ORIGIN

    for path in ("/v1/orders", "/v1/complaints", "/healthz"):
        answered = await http.options(
            path, headers=preflight | {"Access-Control-Request-Headers": "authorization"}
        )
        assert _cors_headers(answered) == [], (path, answered.headers)
        assert answered.status_code == 405, answered.text
    listed = await api.support().get("/v1/complaints", headers={"Origin": UI_ORIGIN})
    assert listed.status_code == 200
    assert _cors_headers(listed) == []
    health = await http.get("/healthz", headers={"Origin": UI_ORIGIN})
    assert _cors_headers(health) == []


@pytest.mark.parametrize("path", ["/v1/complaints/", "/v1/orders/", "/healthz/", "/codec/decode/"])
async def test_a_trailing_slash_is_404_with_the_error_body_not_a_redirect_to_the_host_header(
    api: Api, path: str
) -> None:
    """FastAPI's slash redirect built its Location from the Host header: `GET /v1/complaints/` with
    `Host: attacker.example` answered 307 to http://attacker.example/v1/complaints."""
    response = await api.support().get(path, headers={"Host": "attacker.example"}, follow_redirects=False)
    assert "location" not in response.headers
    assert error_of(response, 404)["code"] == "not_found"
