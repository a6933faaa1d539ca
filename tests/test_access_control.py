"""Who may see and do what, over real HTTP: docs/api.md's "Auth" section as a systematic matrix.

`tests/test_api.py` checks each endpoint's role row once; this module goes further, with two customers who
each hold every kind of resource (a defect complaint waiting for access, a number being activated with an
invalid-number claim, a number with an SMS claim, a canceled activation that put money on the balance):

* a customer gets 404 on everything of another customer's, exactly as for an id that does not exist, so a
  404 tells nothing about what exists; the list endpoint shows them nothing of the other's;
* support and the backend cannot act in the customer's place (answer an access request, choose a remedy,
  withdraw), whatever `sub` their token carries;
* every malformed, forged, expired or misplaced token is 401 on every endpoint;
* server credentials a customer grants appear in clear in no response, header, log line, ledger row or
  workflow history.

Every refused request is also checked for having changed nothing: the whole ledger (every row of every
table) and the complaints' status and events are compared before and after. Nothing is mocked: uvicorn on a
loopback port, the real desk, a worker on the time-skipping Temporal server and a SQLite ledger.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
import sqlalchemy
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text

from ledger.repository import Ledger
from policy.models import Role
from tests.conftest import Api
from tests.factories import CLAIM, DESCRIPTION, history_text
from tests.test_api import error_of, filing_settled, new_customer, order_body, place_order
from tests.test_api_numbers import (
    PRICE,
    activation_body,
    activation_ended,
    evidence,
    filed,
    place_number_order,
    start_activation,
)
from tests.test_cli import Cli, succeeded
from tests.test_cli import cli as cli  # the CLI pointed at this test's server, ledger and keys

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key is .* below the minimum recommended length")
"""HS384/HS512 tokens signed with the API's (HS256-sized) secret are meant to be refused, not to be strong."""

Json = dict[str, Any]
Dump = dict[str, list[str]]


# ------------------------------------------------------------------------------------------- clients


def customer(api: Api, sub: str) -> httpx.AsyncClient:
    return api.customer(sub)


def support(api: Api, sub: str = "alice") -> httpx.AsyncClient:
    return api.support(sub)


def backend(api: Api, sub: str = "shop") -> httpx.AsyncClient:
    return api.backend(sub)


# ---------------------------------------------------------------------------------------- what changed


def _cell(value: object) -> str:
    """Bytes as latin-1, which maps every byte to one character: a clear string inside a blob shows."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    return str(value)


async def ledger_dump(ledger: Ledger) -> Dump:
    """Every row of every table the database holds (not only the tables the code knows of), as text."""
    async with ledger.engine.connect() as conn:
        names: list[str] = await conn.run_sync(lambda sync: sqlalchemy.inspect(sync).get_table_names())
        dump: Dump = {}
        for name in sorted(names):
            rows = (await conn.execute(text(f'SELECT * FROM "{name}"'))).all()
            dump[name] = sorted(" | ".join(_cell(value) for value in row) for row in rows)
    return dump


async def settled_dump(ledger: Ledger) -> Dump:
    """The ledger once the workflows' projections have landed: two reads 150 ms apart that agree. Tests
    wait for the writes they know of first; this catches any they do not."""
    previous = await ledger_dump(ledger)
    for _ in range(40):
        await asyncio.sleep(0.15)
        current = await ledger_dump(ledger)
        if current == previous:
            return current
        previous = current
    raise AssertionError("the ledger kept changing for six seconds")


def row_counts(dump: Dump) -> dict[str, int]:
    return {name: len(rows) for name, rows in dump.items()}


async def access_requested(api: Api, complaint_id: str) -> None:
    """Support's access request notifies the customer just after the API answers; wait for that write."""
    for _ in range(500):
        outbox = await api.desk.ledger.outbox(complaint_id=complaint_id)
        if any(m.template == "access_requested" for m in outbox):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"complaint {complaint_id} never told its customer about the access request")


async def request_access(api: Api, complaint_id: str) -> None:
    asked = await support(api).post(
        f"/v1/complaints/{complaint_id}/access-request",
        json={"scope": "ssh to the web host", "reason": "reproduce the crash"},
    )
    assert asked.status_code == 200, asked.text
    assert asked.json()["status"] == "awaiting_access"
    await access_requested(api, complaint_id)


async def defect_complaint(api: Api, customer_id: str, order_id: str | None = None) -> str:
    """A major-defect complaint the customer filed about a software order of theirs, once settled."""
    order_id = order_id or (await place_order(api, customer_id))["order_id"]
    response = await customer(api, customer_id).post(
        "/v1/complaints", json={"order_id": order_id, "kind": "major_defect", "description": DESCRIPTION}
    )
    assert response.status_code == 201, response.text
    complaint_id: str = response.json()["complaint_id"]
    await filing_settled(api, complaint_id)
    return complaint_id


def credential_body(host: str, username: str, secret: str, notes: str | None = None) -> Json:
    credentials: Json = {"host": host, "username": username, "secret": secret}
    if notes is not None:
        credentials["notes"] = notes
    return {"grant": True, "credentials": credentials}


GRANT = credential_body("shop.example.net", "deploy", "not-the-owners-secret-0001", "port 2222")


# ------------------------------------------------------------------------------------ two customers


@dataclass(frozen=True)
class Holdings:
    """One customer's resources, each of a kind a customer may read or act on."""

    customer_id: str
    software_order: str
    defect: str
    """A major-defect complaint waiting for the customer's answer to an access request (R9)."""
    number_order: str
    activation: str
    """Its number still waits for the SMS (R1)."""
    invalid_claim: str
    """An invalid-number claim about that number (R6: filed with evidence; allowed while it waits)."""
    claim_order: str
    sms_claim: str
    """An SMS-not-received claim (R5) about a number whose activation the ledger does not show."""
    refunded_order: str
    refunded_activation: str
    """Canceled by the customer before any SMS (R2): its price is on the customer's balance."""

    @property
    def orders(self) -> tuple[str, ...]:
        return (self.software_order, self.number_order, self.claim_order, self.refunded_order)

    @property
    def complaints(self) -> tuple[str, ...]:
        return (self.defect, self.invalid_claim, self.sms_claim)

    @property
    def activations(self) -> tuple[str, ...]:
        return (self.activation, self.refunded_activation)


async def holdings(api: Api) -> Holdings:
    customer_id = new_customer()
    owner = customer(api, customer_id)
    software = await place_order(api, customer_id)
    defect = await defect_complaint(api, customer_id, software["order_id"])
    await request_access(api, defect)

    number = await place_number_order(api, customer_id)
    activation = await start_activation(api, number["order_id"])
    invalid = await filed(api, number, "invalid_number", attachments=[evidence()])

    claim_order = await place_number_order(api, customer_id)
    sms_claim = await filed(api, claim_order, "sms_not_received")

    refunded = await place_number_order(api, customer_id)
    refunded_activation = await start_activation(api, refunded["order_id"])
    canceled = await owner.post(f"/v1/activations/{refunded_activation['activation_id']}/cancel")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["refund"]["amount"] == PRICE
    await activation_ended(api, refunded["order_id"])

    return Holdings(
        customer_id=customer_id,
        software_order=software["order_id"],
        defect=defect,
        number_order=number["order_id"],
        activation=activation["activation_id"],
        invalid_claim=invalid["complaint_id"],
        claim_order=claim_order["order_id"],
        sms_claim=sms_claim["complaint_id"],
        refunded_order=refunded["order_id"],
        refunded_activation=refunded_activation["activation_id"],
    )


async def views(api: Api, holdings: Holdings) -> Json:
    """What the backend and support see of a customer's things (the complaints from their workflows, so
    an action applied to a workflow but not yet projected would still show)."""
    shop, alice = backend(api), support(api)
    seen: Json = {}
    for complaint_id in holdings.complaints:
        seen[complaint_id] = (await alice.get(f"/v1/complaints/{complaint_id}")).json()
    for activation_id in holdings.activations:
        seen[activation_id] = (await shop.get(f"/v1/activations/{activation_id}")).json()
    for order_id in holdings.orders:
        seen[order_id] = (await shop.get(f"/v1/orders/{order_id}")).json()
    seen["balance"] = (await shop.get(f"/v1/customers/{holdings.customer_id}/balance")).json()
    return seen


@dataclass(frozen=True)
class Probe:
    """A request a customer may make, aimed at `target` (another customer's id) and, to compare, at
    `stranger` (an id of the same shape that does not exist)."""

    method: str
    build: Callable[[str], tuple[str, Json | None]]
    target: str
    stranger: str
    code: str


def _unknown_order() -> str:
    return f"ord-{uuid.uuid4().hex[:10]}"


def probes_on(victim: Holdings) -> list[Probe]:
    """Every endpoint of docs/api.md a customer may call, aimed at each of `victim`'s resources it takes."""

    def path(template: str, body: Json | None = None) -> Callable[[str], tuple[str, Json | None]]:
        return lambda given: (template.format(given), body)

    def filing(kind: str, description: str, attachments: list[Json]) -> Callable[[str], tuple[str, Json]]:
        return lambda given: (
            "/v1/complaints",
            {"order_id": given, "kind": kind, "description": description, "evidence": attachments},
        )

    probes: list[Probe] = []
    for order_id in victim.orders:
        probes.append(Probe("GET", path("/v1/orders/{}"), order_id, _unknown_order(), "order_not_found"))
    for order_id, kind, description, attachments in (
        (victim.software_order, "major_defect", DESCRIPTION, []),
        (victim.claim_order, "sms_not_received", CLAIM, []),
        (victim.number_order, "invalid_number", CLAIM, [evidence()]),
        (victim.refunded_order, "invalid_number", CLAIM, [evidence()]),
    ):
        build = filing(kind, description, attachments)
        probes.append(Probe("POST", build, order_id, _unknown_order(), "order_not_found"))
    for activation_id in victim.activations:
        stranger = f"act_{_unknown_order()}"
        for method, template in (("GET", "/v1/activations/{}"), ("POST", "/v1/activations/{}/cancel")):
            probes.append(Probe(method, path(template), activation_id, stranger, "activation_not_found"))
    for complaint_id in victim.complaints:
        kind = complaint_id.split(".")[1]
        stranger = f"{_unknown_order()}.{kind}.{uuid.uuid4().hex[:8]}"
        for method, template, body in (
            ("GET", "/v1/complaints/{}", None),
            ("POST", "/v1/complaints/{}/access", GRANT),
            ("POST", "/v1/complaints/{}/access", {"grant": False}),
            ("POST", "/v1/complaints/{}/remedy", {"choice": "refund"}),
            ("POST", "/v1/complaints/{}/remedy", {"choice": "replacement"}),
            ("POST", "/v1/complaints/{}/withdraw", None),
            ("POST", "/v1/complaints/{}/withdraw", {"note": "changed my mind"}),
        ):
            probes.append(Probe(method, path(template, body), complaint_id, stranger, "complaint_not_found"))
    stranger = new_customer()
    for template in ("/v1/customers/{}/balance", "/v1/customers/{}/balance?currency=EUR"):
        probes.append(Probe("GET", path(template), victim.customer_id, stranger, "customer_not_found"))
    return probes


def _normalized(response: httpx.Response, identifier: str) -> Json:
    body: Json = json.loads(response.text.replace(identifier, "<id>"))
    return body


async def test_a_customer_gets_404_on_everything_of_another_customer_as_if_it_did_not_exist(
    api: Api,
) -> None:
    """docs/api.md: "a customer sees and acts on their own orders and complaints only (others: 404)". Each
    customer (and one whose id differs from Alice's only in case) tries every customer endpoint on each of
    the other's resources; the answer is the very 404 an unknown id of the same shape gets (so it tells
    nothing about what exists), and afterwards every row of the ledger and every complaint's status and
    events are as they were. docs/api.md and the code agree on the balance too: another's is 404, not 403."""
    alice, bob = await holdings(api), await holdings(api)
    before = await settled_dump(api.desk.ledger)
    seen_before = {h.customer_id: await views(api, h) for h in (alice, bob)}
    assert seen_before[alice.customer_id]["balance"]["balance"] == PRICE, "the balance has something to hide"
    assert seen_before[alice.customer_id][alice.defect]["status"] == "awaiting_access"

    look_alike = alice.customer_id.upper()  # another customer as far as ids go: they are case-sensitive
    checked = 0
    for intruder, victim in ((bob.customer_id, alice), (alice.customer_id, bob), (look_alike, alice)):
        client = customer(api, intruder)
        for probe in probes_on(victim):
            path, body = probe.build(probe.target)
            response = await client.request(probe.method, path, json=body)
            where = (probe.method, path, body and body.get("kind"))
            assert error_of(response, 404)["code"] == probe.code, where
            unknown_path, unknown_body = probe.build(probe.stranger)
            unknown = await client.request(probe.method, unknown_path, json=unknown_body)
            assert error_of(unknown, 404)["code"] == probe.code, (probe.method, unknown_path)
            assert _normalized(response, probe.target) == _normalized(unknown, probe.stranger), where
            if probe.target != victim.customer_id:
                assert victim.customer_id not in response.text, where
            checked += 1
    assert checked == 3 * (4 + 4 + 2 * 2 + 3 * 7 + 2)

    after = await settled_dump(api.desk.ledger)
    assert row_counts(after) == row_counts(before)
    assert after == before, "a refused request changed a row of the ledger"
    for h in (alice, bob):
        seen = await views(api, h)
        for complaint_id in h.complaints:
            was, now = seen_before[h.customer_id][complaint_id], seen[complaint_id]
            assert (now["status"], now["events"]) == (was["status"], was["events"]), complaint_id
        assert seen == seen_before[h.customer_id]

    for h in (alice, bob):  # the same endpoints answer their owner: the 404s are about ownership
        owner = customer(api, h.customer_id)
        for path in (
            f"/v1/orders/{h.software_order}",
            f"/v1/activations/{h.activation}",
            f"/v1/complaints/{h.invalid_claim}",
            f"/v1/customers/{h.customer_id}/balance",
        ):
            assert (await owner.get(path)).status_code == 200, path


async def test_the_complaint_list_shows_a_customer_nothing_of_another_customer_whatever_the_filter(
    api: Api,
) -> None:
    """`GET /v1/complaints` is filtered to the caller: naming the other customer, their orders, a status
    only their complaint has, or paging one item at a time never brings up one of theirs; nor does being
    a customer whose id differs from theirs only in case."""
    alice, bob = await holdings(api), await holdings(api)
    empty: Json = {"items": [], "next_cursor": None}

    for me, other in ((bob, alice), (alice, bob)):
        client = customer(api, me.customer_id)
        own = (await client.get("/v1/complaints")).json()
        assert sorted(c["complaint_id"] for c in own["items"]) == sorted(me.complaints)
        assert {c["customer_id"] for c in own["items"]} == {me.customer_id}

        assert (await client.get("/v1/complaints", params={"customer_id": other.customer_id})).json() == empty
        for order_id in other.orders:
            for params in ({"order_id": order_id}, {"order_id": order_id, "customer_id": other.customer_id}):
                listed = await client.get("/v1/complaints", params=params)
                assert listed.status_code == 200, listed.text
                assert listed.json() == empty, params
        for params in ({"kind": "major_defect"}, {"status": "awaiting_access"}, {"kind": "invalid_number"}):
            listed = (await client.get("/v1/complaints", params=params)).json()
            assert [c["customer_id"] for c in listed["items"]] == [me.customer_id], params

        seen: list[str] = []
        cursor: str | None = None
        while True:
            params = {"limit": "1"} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/v1/complaints", params=params)).json()
            seen += [c["complaint_id"] for c in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(me.complaints), "paging one at a time shows only the caller's"

    look_alike = customer(api, alice.customer_id.upper())
    for params in ({}, {"customer_id": alice.customer_id}, {"order_id": alice.software_order}):
        listed = await look_alike.get("/v1/complaints", params=params)
        assert listed.json() == empty, ("ids are case-sensitive", params)

    everyone = (await support(api).get("/v1/complaints")).json()["items"]
    assert len(everyone) == 6, "support, for comparison, sees both customers' complaints"


# ---------------------------------------------------------------------- support is not the customer


async def test_support_and_the_backend_cannot_answer_access_choose_a_remedy_or_withdraw_for_the_customer(
    api: Api,
) -> None:
    """docs/api.md names the owner alone for access, remedy and withdraw (R9, R12, R14). Support or the
    backend trying them, with a body the owner's own request would have had applied and even with the
    owner's id as `sub`, is 403 and changes nothing; then the owner's very requests are applied, one after
    another."""
    customer_id = new_customer()
    complaint_id = await defect_complaint(api, customer_id)
    await request_access(api, complaint_id)
    number = await place_number_order(api, customer_id)
    activation_id = (await start_activation(api, number["order_id"]))["activation_id"]
    before = await settled_dump(api.desk.ledger)
    state_before = (await support(api).get(f"/v1/complaints/{complaint_id}")).json()
    assert state_before["status"] == "awaiting_access"

    url = f"/v1/complaints/{complaint_id}"
    actions: list[tuple[str, Json | None]] = [
        ("access", GRANT),
        ("access", {"grant": False}),
        ("remedy", {"choice": "refund"}),
        ("remedy", {"choice": "replacement"}),
        ("withdraw", None),
        ("withdraw", {"note": "on the customer's behalf"}),
    ]
    impostors = [
        api.as_(Role.SUPPORT, "alice"),
        api.as_(Role.SUPPORT, customer_id),
        api.as_(Role.BACKEND, "shop"),
        api.as_(Role.BACKEND, customer_id),
    ]
    checked = 0
    for client in impostors:
        for action, body in actions:
            response = await client.post(f"{url}/{action}", json=body)
            assert error_of(response, 403)["code"] == "forbidden", (action, client.headers)
            checked += 1
    for client in impostors[:2]:  # the backend may cancel an activation; support may not
        response = await client.post(f"/v1/activations/{activation_id}/cancel")
        assert error_of(response, 403)["code"] == "forbidden"
        checked += 1
    assert checked == 26

    assert await settled_dump(api.desk.ledger) == before
    state = (await support(api).get(url)).json()
    assert (state["status"], state["events"], state["remedy_choice"]) == (
        state_before["status"],
        state_before["events"],
        None,
    )
    assert row_counts(before)["vault_secrets"] == 0

    owner = customer(api, customer_id)
    chosen = await owner.post(f"{url}/remedy", json={"choice": "refund"})
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["remedy_choice"] == "refund"
    granted = await owner.post(f"{url}/access", json=GRANT)
    assert granted.status_code == 200, granted.text
    assert granted.json()["access_request"]["granted"] is True
    withdrawn = await owner.post(f"{url}/withdraw", json={"note": "sorted it myself"})
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    canceled = await owner.post(f"/v1/activations/{activation_id}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled", canceled.text
    vault = (await api.desk.ledger.table_counts(["vault_secrets"]))["vault_secrets"]
    assert vault == 0, "the credentials the owner granted went with the complaint they withdrew (R9)"


# -------------------------------------------------------------------------------------------- tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _segment(value: object) -> str:
    return _b64(json.dumps(value).encode())


def _hs256(signing_input: str, secret: str) -> str:
    return _b64(hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest())


def _assembled(header: Json, claims: object, secret: str | None) -> str:
    """A JWT from its parts, signed HS256 with `secret` whatever the header says (`None`: no signature)."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    return f"{signing_input}.{'' if secret is None else _hs256(signing_input, secret)}"


def _role_twice(claims: Json, secret: str) -> str:
    """The admitted claims with a second `role` key, `customer`, written before the admitted one: a parser
    that keeps the last key reads the admitted role, one that keeps the first, a customer's."""
    text = json.dumps(claims)
    payload = _b64(('{"role": "customer", ' + text[1:]).encode())
    signing_input = f"{_segment(HS256)}.{payload}"
    return f"{signing_input}.{_hs256(signing_input, secret)}"


HS256 = {"alg": "HS256", "typ": "JWT"}
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class Placement:
    """Where a request carries its credentials: headers and query parameters added to the request."""

    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


def bearer(token: str) -> Placement:
    return Placement(headers={"Authorization": f"Bearer {token}"})


Case = Callable[[Json, str], Placement]
"""A bad way to authenticate, made from the claims the endpoint would admit and the API's secret."""


def _with(claims: Json, **changes: object) -> Json:
    return {**claims, **changes}


def _without(claims: Json, name: str) -> Json:
    return {k: v for k, v in claims.items() if k != name}


def _now() -> int:
    return int(time.time())


def _signature_of(token: str) -> str:
    return token.rsplit(".", 1)[1]


def _transplanted(claims: Json, secret: str) -> str:
    """The admitted claims under the signature of another caller's valid token: a payload swap."""
    other = _with(claims, sub="intruder", role="customer")
    return f"{_segment(HS256)}.{_segment(claims)}.{_signature_of(_assembled(HS256, other, secret))}"


TOKEN_CASES: dict[str, Case] = {
    "expired a day ago": lambda c, s: bearer(jwt.encode(_with(c, exp=_now() - 86_400), s, "HS256")),
    "expired a second ago": lambda c, s: bearer(jwt.encode(_with(c, exp=_now() - 1), s, "HS256")),
    "expiring this very second": lambda c, s: bearer(jwt.encode(_with(c, exp=_now()), s, "HS256")),
    "not valid before tomorrow": lambda c, s: bearer(jwt.encode(_with(c, nbf=_now() + 86_400), s, "HS256")),
    "signed with another secret": lambda c, s: bearer(jwt.encode(c, "another-secret-" + "z" * 40, "HS256")),
    "signed with the secret and one more character": lambda c, s: bearer(jwt.encode(c, s + "x", "HS256")),
    "alg none, unsigned": lambda c, s: bearer(_assembled({"alg": "none", "typ": "JWT"}, c, None)),
    "alg None, unsigned": lambda c, s: bearer(_assembled({"alg": "None"}, c, None)),
    "alg NONE, unsigned": lambda c, s: bearer(_assembled({"alg": "NONE"}, c, None)),
    "alg none with a valid HS256 signature": lambda c, s: bearer(_assembled({"alg": "none"}, c, s)),
    "no alg, a valid HS256 signature": lambda c, s: bearer(_assembled({"typ": "JWT"}, c, s)),
    "HS256 header, no signature": lambda c, s: bearer(_assembled(HS256, c, None)),
    "HS512 signed with the real secret": lambda c, s: bearer(jwt.encode(c, s, "HS512")),
    "HS384 signed with the real secret": lambda c, s: bearer(jwt.encode(c, s, "HS384")),
    "HS512 header over a valid HS256 signature": lambda c, s: bearer(_assembled({"alg": "HS512"}, c, s)),
    "RS256 signed with some RSA key": lambda c, s: bearer(jwt.encode(c, RSA_KEY, "RS256")),
    "RS256 header over a valid HS256 signature": lambda c, s: bearer(_assembled({"alg": "RS256"}, c, s)),
    "the claims under another caller's signature": lambda c, s: bearer(_transplanted(c, s)),
    "no exp": lambda c, s: bearer(jwt.encode(_without(c, "exp"), s, "HS256")),
    "no sub": lambda c, s: bearer(jwt.encode(_without(c, "sub"), s, "HS256")),
    "no role": lambda c, s: bearer(jwt.encode(_without(c, "role"), s, "HS256")),
    "no iat": lambda c, s: bearer(jwt.encode(_without(c, "iat"), s, "HS256")),
    "no iss": lambda c, s: bearer(jwt.encode(_without(c, "iss"), s, "HS256")),
    "no aud": lambda c, s: bearer(jwt.encode(_without(c, "aud"), s, "HS256")),
    "another issuer": lambda c, s: bearer(jwt.encode(_with(c, iss="another-idp"), s, "HS256")),
    "another audience": lambda c, s: bearer(jwt.encode(_with(c, aud="another-api"), s, "HS256")),
    "living a day and a second": lambda c, s: bearer(jwt.encode(_with(c, exp=c["iat"] + 86_401), s, "HS256")),
    "exp of 10^30": lambda c, s: bearer(jwt.encode(_with(c, exp=10**30), s, "HS256")),
    "issued an hour from now": lambda c, s: bearer(jwt.encode(_with(c, iat=_now() + 3600), s, "HS256")),
    "role written twice": lambda c, s: bearer(_role_twice(c, s)),
    "exp is not a number": lambda c, s: bearer(_assembled(HS256, _with(c, exp="tomorrow"), s)),
    "role admin": lambda c, s: bearer(jwt.encode(_with(c, role="admin"), s, "HS256")),
    "role system, the desk's own": lambda c, s: bearer(jwt.encode(_with(c, role="system"), s, "HS256")),
    "role in capitals": lambda c, s: bearer(jwt.encode(_with(c, role=c["role"].upper()), s, "HS256")),
    "role empty": lambda c, s: bearer(jwt.encode(_with(c, role=""), s, "HS256")),
    "role null": lambda c, s: bearer(jwt.encode(_with(c, role=None), s, "HS256")),
    "role a list": lambda c, s: bearer(jwt.encode(_with(c, role=[c["role"]]), s, "HS256")),
    "sub a path": lambda c, s: bearer(jwt.encode(_with(c, sub="../etc"), s, "HS256")),
    "sub with a dot": lambda c, s: bearer(jwt.encode(_with(c, sub=c["sub"] + ".x"), s, "HS256")),
    "sub with a space": lambda c, s: bearer(jwt.encode(_with(c, sub=c["sub"] + " x"), s, "HS256")),
    "sub empty": lambda c, s: bearer(jwt.encode(_with(c, sub=""), s, "HS256")),
    "sub too long": lambda c, s: bearer(jwt.encode(_with(c, sub="c" * 65), s, "HS256")),
    "sub a number": lambda c, s: bearer(_assembled(HS256, _with(c, sub=42), s)),
    "sub null": lambda c, s: bearer(_assembled(HS256, _with(c, sub=None), s)),
    "claims a JSON list": lambda c, s: bearer(_assembled(HS256, [c], s)),
    "claims not JSON": lambda c, s: bearer(f"{_segment(HS256)}.{_b64(b'role=backend')}.{_b64(b'sig')}"),
    "header not base64": lambda c, s: bearer("!!!." + jwt.encode(c, s, "HS256").split(".", 1)[1]),
    "claims not base64": lambda c, s: bearer(f"{_segment(HS256)}.%%%.{_b64(b'sig')}"),
    "two segments": lambda c, s: bearer(jwt.encode(c, s, "HS256").rsplit(".", 1)[0]),
    "four segments": lambda c, s: bearer(jwt.encode(c, s, "HS256") + ".extra"),
    "not a JWT at all": lambda c, s: bearer("not-a-jwt"),
    "the word Bearer alone": lambda c, s: Placement(headers={"Authorization": "Bearer"}),
}
"""Tokens that must not let anyone in: each is the admitted claims with one thing wrong."""


def _good(claims: Json, secret: str) -> str:
    return jwt.encode(claims, secret, "HS256")


PLACEMENT_CASES: dict[str, Case] = {
    "no credentials at all": lambda c, s: Placement(),
    "token in the query string as access_token": lambda c, s: Placement(params={"access_token": _good(c, s)}),
    "token in the query string as token": lambda c, s: Placement(params={"token": _good(c, s)}),
    "token in a cookie": lambda c, s: Placement(headers={"Cookie": f"access_token={_good(c, s)}"}),
    "header in a cookie": lambda c, s: Placement(
        headers={"Cookie": f"Authorization={quote('Bearer ' + _good(c, s))}"}
    ),
    "Basic scheme with the token as password": lambda c, s: Placement(
        headers={"Authorization": "Basic " + base64.b64encode(f"{c['sub']}:{_good(c, s)}".encode()).decode()}
    ),
    "Basic scheme with the bare token": lambda c, s: Placement(
        headers={"Authorization": f"Basic {_good(c, s)}"}
    ),
    "Token scheme": lambda c, s: Placement(headers={"Authorization": f"Token {_good(c, s)}"}),
    "JWT scheme": lambda c, s: Placement(headers={"Authorization": f"JWT {_good(c, s)}"}),
    "no scheme": lambda c, s: Placement(headers={"Authorization": _good(c, s)}),
    "another header": lambda c, s: Placement(headers={"X-Authorization": f"Bearer {_good(c, s)}"}),
    "the proxy's header": lambda c, s: Placement(headers={"Proxy-Authorization": f"Bearer {_good(c, s)}"}),
}
"""A valid token (or none) in a place docs/api.md does not name: only `Authorization: Bearer` counts."""


@dataclass(frozen=True)
class Call:
    """One endpoint of docs/api.md with a body its admitted caller would have applied."""

    method: str
    path: str
    role: Role
    sub: str
    body: Json | None = None

    def claims(self) -> Json:
        now = _now()
        return {
            "sub": self.sub,
            "role": self.role.value,
            "iat": now,
            "exp": now + 600,
            "iss": "refund-desk",
            "aud": "refund-desk-api",
        }


@dataclass(frozen=True)
class Stage:
    """Resources in the states that let each endpoint act, and a call per endpoint that would act."""

    customer_id: str
    complaints: tuple[str, ...]
    calls: list[Call]


async def stage(api: Api) -> Stage:
    """One customer with: an untouched software order (to file about), a complaint under review (to review,
    offer a replacement for and fix), another (to ask access for), one awaiting access (to answer, choose a
    remedy for, withdraw), two numbers waiting for their SMS (one to report it, one to cancel) and a number
    order not activated yet. The calls, made in order with good tokens, are each applied."""
    me = new_customer()
    fresh = await place_order(api, me)
    reviewed = await defect_complaint(api, me)
    asked = await defect_complaint(api, me)
    answered = await defect_complaint(api, me)
    await request_access(api, answered)
    texted = (await start_activation(api, (await place_number_order(api, me))["order_id"]))["activation_id"]
    canceled = (await start_activation(api, (await place_number_order(api, me))["order_id"]))["activation_id"]
    unstarted = await place_number_order(api, me)
    shop, alice, owner = (Role.BACKEND, "shop"), (Role.SUPPORT, "alice"), (Role.CUSTOMER, me)
    calls = [
        Call("POST", "/v1/orders", *shop, order_body(me)),
        Call("GET", f"/v1/orders/{fresh['order_id']}", *owner),
        Call("POST", "/v1/activations", *shop, activation_body(unstarted["order_id"])),
        Call("POST", f"/v1/activations/{texted}/sms", *shop, {"text": "Your code is 4242"}),
        Call("POST", f"/v1/activations/{canceled}/cancel", *owner),
        Call("GET", f"/v1/activations/{texted}", *owner),
        Call(
            "POST",
            "/v1/complaints",
            *owner,
            {"order_id": fresh["order_id"], "kind": "major_defect", "description": DESCRIPTION},
        ),
        Call("GET", f"/v1/complaints/{reviewed}", *owner),
        Call("GET", "/v1/complaints", *alice),
        Call(
            "POST",
            f"/v1/complaints/{reviewed}/replacement",
            *alice,
            {"sku": "plugin-seo-max", "name": "SEO Max plugin", "value": "52.00"},
        ),
        Call("POST", f"/v1/complaints/{reviewed}/review", *alice, {"decision": "approve", "note": "ok"}),
        Call("POST", f"/v1/complaints/{reviewed}/fix", *alice, {"note": "patched"}),
        Call(
            "POST",
            f"/v1/complaints/{asked}/access-request",
            *alice,
            {"scope": "ssh", "reason": "reproduce the crash"},
        ),
        Call("POST", f"/v1/complaints/{answered}/remedy", *owner, {"choice": "refund"}),
        Call("POST", f"/v1/complaints/{answered}/access", *owner, GRANT),
        Call("POST", f"/v1/complaints/{answered}/withdraw", *owner, {"note": "sorted"}),
        Call("GET", f"/v1/customers/{me}/balance", *owner),
    ]
    return Stage(customer_id=me, complaints=(reviewed, asked, answered), calls=calls)


async def send(
    api: Api, call: Call, placement: Placement, http: httpx.AsyncClient | None = None
) -> httpx.Response:
    """`call` with only `placement`'s credentials (a client of its own unless `http`, one with none)."""
    async with AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=api.base_url, timeout=30))
        return await http.request(
            call.method, call.path, json=call.body, headers=placement.headers, params=placement.params
        )


async def complaint_states(api: Api, complaint_ids: tuple[str, ...]) -> list[Json]:
    client = support(api)
    return [(await client.get(f"/v1/complaints/{cid}")).json() for cid in complaint_ids]


async def refused_everywhere(api: Api, staged: Stage, cases: dict[str, Case]) -> int:
    """Send every call with every case's credentials; each must be 401 with the error body and the Bearer
    challenge, and echo no token. Returns how many were sent."""
    wrong: list[str] = []
    sent = 0
    http = api.client()  # carries no credentials of its own, and keeps no cookies (none are set)
    for name, case in cases.items():
        for call in staged.calls:
            placement = case(call.claims(), api.secret)
            response = await send(api, call, placement, http)
            sent += 1
            where = f"{name}: {call.method} {call.path} -> {response.status_code} {response.text[:120]}"
            if response.status_code != 401:
                wrong.append(where)
                continue
            body = response.json()
            if set(body) != {"error"} or body["error"]["code"] != "unauthorized":
                wrong.append(where)
            if response.headers.get("WWW-Authenticate") != "Bearer":
                wrong.append(f"{where} (no Bearer challenge)")
            for value in (*placement.headers.values(), *placement.params.values()):
                if len(value) > 20 and value.split()[-1] in response.text:
                    wrong.append(f"{where} (echoes the credentials)")
    assert not wrong, "\n".join(wrong)
    return sent


async def applied_with_good_tokens(api: Api, staged: Stage) -> None:
    """The same calls, with a good token in the header, are each applied: the 401s were the token's doing."""
    for call in staged.calls:
        response = await send(api, call, bearer(_good(call.claims(), api.secret)))
        assert response.status_code in (200, 201), (call.method, call.path, response.text)


async def test_every_endpoint_answers_401_to_a_forged_malformed_or_expired_token_and_changes_nothing(
    api: Api,
) -> None:
    """docs/api.md "Auth": HS256 only, `exp` enforced, `iat`, `iss` and `aud` required and this deployment's,
    a lifetime of at most a day, no key twice, `sub` an id, `role` one of three. Each bad token, made
    of the claims the endpoint admits with one thing wrong, is 401 on every endpoint with a body that would
    have been applied; nothing in the ledger or the complaints moves. The same calls with a good token are
    then applied, so the bodies were real."""
    staged = await stage(api)
    before = await settled_dump(api.desk.ledger)
    states = await complaint_states(api, staged.complaints)

    sent = await refused_everywhere(api, staged, TOKEN_CASES)

    assert sent == len(TOKEN_CASES) * 17
    assert await settled_dump(api.desk.ledger) == before
    assert await complaint_states(api, staged.complaints) == states
    await applied_with_good_tokens(api, staged)


async def test_a_good_token_anywhere_but_the_bearer_header_is_401_and_changes_nothing(api: Api) -> None:
    """Only `Authorization: Bearer <JWT>` authenticates: a valid token in the query string (it would end up
    in access logs), in a cookie (CSRF), under the Basic or another scheme, or in another header does not."""
    staged = await stage(api)
    before = await settled_dump(api.desk.ledger)
    states = await complaint_states(api, staged.complaints)

    sent = await refused_everywhere(api, staged, PLACEMENT_CASES)

    assert sent == len(PLACEMENT_CASES) * 17
    assert await settled_dump(api.desk.ledger) == before
    assert await complaint_states(api, staged.complaints) == states
    await applied_with_good_tokens(api, staged)


async def test_a_token_is_refused_once_its_exp_has_just_passed(api: Api) -> None:
    """`exp` is enforced to the second, with no leeway: a token that worked a moment ago is 401 on every
    endpoint as soon as its expiry passes."""
    staged = await stage(api)
    expiry = _now() + 2
    look = staged.calls[1]
    shown = await send(api, look, bearer(_good(_with(look.claims(), exp=expiry), api.secret)))
    assert shown.status_code == 200, shown.text
    await asyncio.sleep(max(0.0, expiry - time.time()) + 0.05)
    before = await settled_dump(api.desk.ledger)

    def expired(claims: Json, secret: str) -> Placement:
        return bearer(_good(_with(claims, exp=expiry), secret))

    assert await refused_everywhere(api, staged, {"just expired": expired}) == 17
    refused = await send(api, look, expired(look.claims(), api.secret))
    assert error_of(refused, 401)["message"] == "the token has expired"
    assert await settled_dump(api.desk.ledger) == before


# ------------------------------------------------------------------------------- credentials in clear


@contextmanager
def every_log_record(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every logger at DEBUG into caplog for the block, including those that do not propagate to the root
    (uvicorn's, say), and back as they were afterwards."""
    caplog.set_level(logging.DEBUG)
    loggers = [
        logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    attached: list[logging.Logger] = []
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        if not logger.propagate and caplog.handler not in logger.handlers:
            logger.addHandler(caplog.handler)
            attached.append(logger)
    try:
        yield
    finally:
        for logger in attached:
            logger.removeHandler(caplog.handler)
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled


def record_text(record: logging.LogRecord) -> str:
    """All a log line could carry: its message, its exception and every attribute (extras included)."""
    parts = [record.getMessage(), repr(vars(record))]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


@asynccontextmanager
async def recording(
    api: Api, responses: list[httpx.Response]
) -> AsyncIterator[Callable[[Role, str], httpx.AsyncClient]]:
    """Clients like `api.as_`, whose every response (body read) lands in `responses`."""

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        responses.append(response)

    async with AsyncExitStack() as stack:

        def as_(role: Role, sub: str) -> httpx.AsyncClient:
            made = httpx.AsyncClient(
                base_url=api.base_url,
                headers={"Authorization": f"Bearer {api.token(role, sub)}"},
                timeout=30,
                event_hooks={"response": [keep]},
            )
            stack.push_async_callback(made.aclose)
            return made

        yield as_


def database_files(ledger: Ledger) -> list[Path]:
    """The SQLite file and its journals, read raw: a string once written in clear, even deleted, shows."""
    database = ledger.engine.url.database
    assert database, "the access-control tests run on a SQLite file"
    main = Path(database)
    return [p for p in (main, *(main.with_name(main.name + s) for s in ("-wal", "-journal"))) if p.exists()]


async def test_credentials_granted_through_the_api_appear_in_clear_in_no_response_log_row_or_history(
    api: Api, cli: Cli, caplog: pytest.LogCaptureFixture
) -> None:
    """docs/api.md: "Credentials never appear in any response, log or workflow history in clear text." A
    customer grants access with credentials made of unique strings, after a few refused attempts (too early,
    by a stranger, by support, malformed); the whole scenario runs with every logger at DEBUG (SQL with its
    parameters included) and every response recorded. None of the strings is in any response body or
    header, any log line, any ledger row or the database file, the workflow's history (payloads decoded or
    not) or the CLI's `complaints show`; yet the vault opens to exactly them, so they were kept, sealed."""
    tag = uuid.uuid4().hex
    host, username = f"host-{tag[:12]}.example.net", f"user_{tag[12:24]}"
    secret, notes = f"secret-{uuid.uuid4().hex}", f"notes-{uuid.uuid4().hex}"
    distinctive = {"host": host, "username": username, "secret": secret, "notes": notes}
    grant = credential_body(host, username, secret, notes)
    responses: list[httpx.Response] = []
    customer_id = new_customer()

    with every_log_record(caplog):
        async with recording(api, responses) as recorded:
            shop, alice = recorded(Role.BACKEND, "shop"), recorded(Role.SUPPORT, "alice")
            owner, stranger = recorded(Role.CUSTOMER, customer_id), recorded(Role.CUSTOMER, new_customer())
            order = (await shop.post("/v1/orders", json=order_body(customer_id))).json()
            filed_ = await owner.post(
                "/v1/complaints",
                json={"order_id": order["order_id"], "kind": "major_defect", "description": DESCRIPTION},
            )
            complaint_id = filed_.json()["complaint_id"]
            url = f"/v1/complaints/{complaint_id}"

            too_early = await owner.post(f"{url}/access", json=grant)
            assert error_of(too_early, 409)["code"] == "invalid_state"
            asked = await alice.post(f"{url}/access-request", json={"scope": "ssh", "reason": "reproduce"})
            assert asked.json()["status"] == "awaiting_access", asked.text
            by_stranger = await stranger.post(f"{url}/access", json=grant)
            assert error_of(by_stranger, 404)["code"] == "complaint_not_found"
            assert error_of(await alice.post(f"{url}/access", json=grant), 403)["code"] == "forbidden"
            extra = {**grant, "credentials": {**grant["credentials"], "port": 22}}
            assert error_of(await owner.post(f"{url}/access", json=extra), 422)["code"] == "validation_error"
            too_long = {**grant, "credentials": {**grant["credentials"], "secret": secret * 120}}
            assert error_of(await owner.post(f"{url}/access", json=too_long), 422)["code"] == (
                "validation_error"
            )
            both = {"grant": False, "credentials": grant["credentials"]}
            assert error_of(await owner.post(f"{url}/access", json=both), 422)["code"] == "validation_error"

            granted = await owner.post(f"{url}/access", json=grant)
            assert granted.status_code == 200, granted.text
            assert granted.json()["access_request"]["granted"] is True
            for client in (owner, alice, shop):
                assert (await client.get(url)).status_code == 200
                assert (await client.get("/v1/complaints", params={"order_id": order["order_id"]})).is_success
            for client in (owner, shop):
                assert (await client.get(f"/v1/orders/{order['order_id']}")).status_code == 200
            lent = await api.desk.ledger.get_complaint(complaint_id)
            assert lent is not None and lent.state.access is not None
            reference = lent.state.access.credentials_ref
            assert reference is not None
            vaulted = await api.desk.ledger.sealed_secret(reference)
            assert vaulted is not None, "kept, sealed, while the complaint is open"
            opened = await api.desk.reveal_credentials(reference)
            fixed = await alice.post(f"{url}/fix", json={"note": "patched on the customer's host"})
            assert fixed.json()["status"] == "rectified", fixed.text
            assert (await owner.get(url)).json()["status"] == "rectified"
        await settled_dump(api.desk.ledger)
    records = list(caplog.records)

    def leaks(where: str, haystack: str) -> list[str]:
        return [f"the {name} in {where}" for name, value in distinctive.items() if value in haystack]

    found: list[str] = []
    assert len(responses) >= 20
    for response in responses:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
        where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
        found += leaks(f"the response to {where}", f"{headers}\n{response.text}")

    assert records, "the log capture caught nothing, so it could not have caught a leak"
    names = {record.name for record in records}
    assert "uvicorn.access" in names and any(n.startswith("sqlalchemy.engine") for n in names), names
    assert any(complaint_id in record_text(r) for r in records), "the capture saw the complaint's writes"
    for record in records:
        found += leaks(f"a log line of {record.name}", record_text(record))

    dump = await ledger_dump(api.desk.ledger)
    assert row_counts(dump)["vault_secrets"] == 0, "R9: the vault entry is destroyed as the complaint ends"
    assert await api.desk.ledger.sealed_secret(reference) is None
    for table, rows in dump.items():
        found += leaks(f"the ledger's {table} table", "\n".join(rows))
    for path in database_files(api.desk.ledger):
        found += leaks(f"the database file {path.name}", path.read_bytes().decode("latin-1"))

    handle = api.desk.client.get_workflow_handle(lent.workflow_id, run_id=lent.run_id)
    history = await handle.fetch_history()
    updates = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert "answer_access" in updates, "the grant went through the workflow, so its history could leak"
    decoded = history_text(history)
    assert vaulted[1].ciphertext in decoded, "the decoded history shows the grant, sealed: the search sees it"
    found += leaks("the workflow history (payloads decoded)", decoded)
    found += leaks("the workflow history (raw JSON)", history.to_json())

    shown = succeeded(await cli("complaints", "show", complaint_id))
    assert complaint_id in shown and "granted" in shown
    found += leaks("the CLI's complaints show", shown)

    assert not found, "credentials in clear:\n" + "\n".join(found)
    assert (opened.host, opened.username, opened.secret.get_secret_value(), opened.notes) == (
        host,
        username,
        secret,
        notes,
    ), "the vault keeps exactly what the customer granted"
