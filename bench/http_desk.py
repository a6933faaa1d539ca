"""`HttpDesk`: the desk calls the chaos driver makes, sent over HTTP to the API processes (docs/api.md).

It offers the methods of `ComplaintDesk` that the driver and the scenarios call, with the same arguments
and results, so the scenarios run unchanged against either. Each call is one request of docs/api.md, made
by `bench.api_client.ApiPool` as the caller the call names (the backend, support, the customer), with an
idempotency key on every POST; the answer is turned back into a state, and an error into what the desk
raises (`bench.http_answers`).

Where no route answers what the driver needs, it reads what the run's checks read, and says so:

- `outcome`: the complaint's final state, Temporal's result of its workflow (no route waits for a
  complaint to end; the driver's activation outcome and `filed_id` read Temporal and the ledger already);
- `client`, `ledger`, `keyring`: the driver's random queries, its search for a filing whose answer was lost,
  and the notices' subscription use them directly, as in the single-process run.

Filing and starting an activation go to the API processes whose environment sets the policy the scenario
files under (`policy`, which `dataclasses.replace` sets as on `ComplaintDesk`): each process files under its
own environment's policy. Every other call may go to any process: a complaint keeps its policy for life.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from temporalio.client import Client

from bench.api_client import ApiPool
from bench.http_answers import UnexpectedAnswer, activation_state, body_of, complaint_state
from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.activation import ActivationState
from policy.complaint import ComplaintState, Review
from policy.credentials import ServerCredentials
from policy.evidence import EvidenceFile
from policy.models import Actor, ComplaintKind, Money, Order, RemedyChoice, ReplacementOffer, Role
from policy.reports import ReportedAction
from policy.settings import PolicySnapshot
from starter.api.respond_async import RESPOND_ASYNC
from starter.desk import ComplaintDesk

SHOP = Actor(role=Role.BACKEND, id="chaos-shop")
"""Who records the orders: the shop's backend (`record_order` names no actor)."""
READER = Actor(role=Role.SUPPORT, id="chaos-reader")
"""Who reads complaints for the driver (`get` names no actor): support's tools may read any complaint."""


def _amount(value: Decimal) -> str:
    """Money as the API takes it: plain digits and a point, never an exponent."""
    return format(value, "f")


@dataclass
class HttpDesk:
    pool: ApiPool
    reader: ComplaintDesk
    """The ledger and Temporal, for what no route answers (the module's docstring)."""
    policy: PolicySnapshot

    @property
    def client(self) -> Client:
        return self.reader.client

    @property
    def ledger(self) -> Ledger:
        return self.reader.ledger

    @property
    def keyring(self) -> VaultKeyring:
        return self.reader.keyring

    async def _post(
        self,
        path: str,
        actor: Actor,
        body: dict[str, Any] | None = None,
        urls: list[str] | None = None,
        prefer: str | None = None,
    ) -> tuple[dict[str, Any], int]:
        response = await self.pool.call("POST", path, actor, body, urls, prefer)
        return body_of(response, f"POST {path}"), response.status_code

    async def _get(self, path: str, actor: Actor) -> dict[str, Any]:
        return body_of(await self.pool.call("GET", path, actor), f"GET {path}")

    async def _complaint(self, path: str, actor: Actor, body: dict[str, Any] | None = None) -> ComplaintState:
        shown, _ = await self._post(path, actor, body)
        return complaint_state(shown)

    # ------------------------------------------------------------------------------- orders, numbers

    async def record_order(self, order: Order, *, email: str | None = None) -> tuple[Order, bool]:
        """`POST /v1/orders` as the shop's backend; 201 recorded, 200 the same order again."""
        body: dict[str, Any] = {
            "order_id": order.order_id,
            "customer_id": order.customer_id,
            "product": {
                "sku": order.product.sku,
                "kind": order.product.kind.value,
                "name": order.product.name,
            },
            "amount": _amount(order.price.amount),
            "currency": order.price.currency,
            "placed_at": order.placed_at.isoformat(),
        }
        if email is not None:
            body["customer_email"] = email
        _, status = await self._post("/v1/orders", SHOP, body)
        return order, status == 201

    async def start_activation(
        self, order_id: str, phone_number: str, service: str, actor: Actor
    ) -> tuple[ActivationState, bool]:
        body = {"order_id": order_id, "phone_number": phone_number, "service": service}
        urls = self.pool.filing_urls(self.policy)
        shown, status = await self._post("/v1/activations", actor, body, urls)
        return activation_state(shown), status == 201

    async def get_activation(self, activation_id: str, seen_by: Actor) -> ActivationState:
        return activation_state(await self._get(f"/v1/activations/{activation_id}", seen_by))

    async def receive_sms(self, activation_id: str, actor: Actor, text: str) -> ActivationState:
        shown, _ = await self._post(f"/v1/activations/{activation_id}/sms", actor, {"text": text})
        return activation_state(shown)

    async def cancel_activation(self, activation_id: str, actor: Actor) -> ActivationState:
        shown, _ = await self._post(f"/v1/activations/{activation_id}/cancel", actor)
        return activation_state(shown)

    # ------------------------------------------------------------------------------------ complaints

    async def file(
        self,
        order: Order,
        kind: ComplaintKind,
        description: str,
        filed_by: Actor,
        *,
        evidence: Sequence[EvidenceFile] = (),
        policy: PolicySnapshot | None = None,
    ) -> ComplaintState:
        """`POST /v1/complaints` to a process filing under `policy` (default: this desk's)."""
        body: dict[str, Any] = {"order_id": order.order_id, "kind": kind.value, "description": description}
        if evidence:
            body["evidence"] = [
                {
                    "name": e.name,
                    "content_type": e.content_type,
                    "data_base64": base64.b64encode(e.data).decode(),
                }
                for e in evidence
            ]
        urls = self.pool.filing_urls(policy or self.policy)
        shown, _ = await self._post("/v1/complaints", filed_by, body, urls)
        return complaint_state(shown)

    async def get(self, complaint_id: str) -> ComplaintState:
        return complaint_state(await self._get(f"/v1/complaints/{complaint_id}", READER))

    async def outcome(self, complaint_id: str) -> ComplaintState:
        """Temporal's result of the complaint's workflow: no route waits for a complaint to end."""
        return await self.reader.outcome(complaint_id)

    # --------------------------------------------------------------------------------------- support

    async def review(self, complaint_id: str, review: Review) -> ComplaintState:
        body: dict[str, Any] = {"decision": review.decision.value, "note": review.note}
        if review.reason_code is not None:
            body["reason_code"] = review.reason_code.value
        return await self._complaint(f"/v1/complaints/{complaint_id}/review", review.actor, body)

    async def request_access(
        self, complaint_id: str, actor: Actor, scope: str, reason: str
    ) -> ComplaintState:
        body = {"scope": scope, "reason": reason}
        return await self._complaint(f"/v1/complaints/{complaint_id}/access-request", actor, body)

    async def mark_fixed(self, complaint_id: str, actor: Actor, note: str = "") -> ComplaintState:
        return await self._complaint(f"/v1/complaints/{complaint_id}/fix", actor, {"note": note})

    async def replacement_offer(
        self, complaint_id: str, sku: str, name: str, value: Decimal, currency: str | None = None
    ) -> ReplacementOffer:
        """The offer as `POST .../replacement` will make it: in `currency`, else the order's, which the
        complaint shows (`GET /v1/complaints/{id}`)."""
        if currency is None:
            currency = (await self._get(f"/v1/complaints/{complaint_id}", READER))["currency"]
        return ReplacementOffer(sku=sku, name=name, value=Money(amount=value, currency=currency))

    async def offer_replacement(
        self, complaint_id: str, actor: Actor, offer: ReplacementOffer
    ) -> ComplaintState:
        body = {
            "sku": offer.sku,
            "name": offer.name,
            "value": _amount(offer.value.amount),
            "currency": offer.value.currency,
        }
        return await self._complaint(f"/v1/complaints/{complaint_id}/replacement", actor, body)

    # -------------------------------------------------------------------------------------- customer

    async def grant_access(
        self, complaint_id: str, actor: Actor, credentials: ServerCredentials
    ) -> ComplaintState:
        """The credentials in clear to the API, which seals them before they reach Temporal."""
        body = {"grant": True, "credentials": _credentials(credentials)}
        return await self._complaint(f"/v1/complaints/{complaint_id}/access", actor, body)

    async def refuse_access(self, complaint_id: str, actor: Actor) -> ComplaintState:
        return await self._complaint(f"/v1/complaints/{complaint_id}/access", actor, {"grant": False})

    async def choose_remedy(self, complaint_id: str, actor: Actor, choice: RemedyChoice) -> ComplaintState:
        body = {"choice": choice.value}
        return await self._complaint(f"/v1/complaints/{complaint_id}/remedy", actor, body)

    async def withdraw(self, complaint_id: str, actor: Actor, note: str = "") -> ComplaintState:
        return await self._complaint(f"/v1/complaints/{complaint_id}/withdraw", actor, {"note": note})

    # --------------------------------------------------------------------------------------- reports

    async def report(
        self,
        complaint_id: str,
        actor: Actor,
        action: ReportedAction,
        *,
        note: str = "",
        credentials: ServerCredentials | None = None,
        report_id: str | None = None,
    ) -> str:
        """The action's own route with `Prefer: respond-async`: a report, answered 202 (docs/api.md). The
        API derives the report's id from the caller and the request's `Idempotency-Key`, which the pool
        keeps for the request's retries, so `report_id` is not sent: each request is its own report."""
        path, body = _reported(complaint_id, action, note, credentials)
        shown, status = await self._post(path, actor, body, prefer=RESPOND_ASYNC)
        if status != 202:
            raise UnexpectedAnswer(f"POST {path} with Prefer: {RESPOND_ASYNC}: {status}, not 202")
        report: str = shown["report_id"]
        return report


def _credentials(credentials: ServerCredentials) -> dict[str, Any]:
    given: dict[str, Any] = {
        "host": credentials.host,
        "username": credentials.username,
        "secret": credentials.secret.get_secret_value(),
    }
    if credentials.notes is not None:
        given["notes"] = credentials.notes
    return given


def _reported(
    complaint_id: str, action: ReportedAction, note: str, credentials: ServerCredentials | None
) -> tuple[str, dict[str, Any]]:
    """The route and body of the update `action` stands for."""
    base = f"/v1/complaints/{complaint_id}"
    if action is ReportedAction.FIXED:
        return f"{base}/fix", {"note": note}
    if action is ReportedAction.WITHDRAWN:
        return f"{base}/withdraw", {"note": note}
    if action is ReportedAction.ACCESS_REFUSED:
        return f"{base}/access", {"grant": False}
    if credentials is None:
        raise ValueError("a grant reports the credentials it gives")
    return f"{base}/access", {"grant": True, "credentials": _credentials(credentials)}
