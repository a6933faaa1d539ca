"""Support's two doors over real HTTP, on the real desk, a worker on the time-skipping Temporal server and a
real SQLite ledger: opening a complaint's evidence (R6) and revealing the server credentials a customer
granted (R9), each reveal recorded in the audit trail before the vault is opened."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from ledger.idempotency import IdempotencyKeyRow
from ledger.repository import Ledger
from ledger.schema import EvidenceRow, VaultSecretRow
from policy.credentials import RevealCredentials
from policy.evidence import EvidenceFile
from policy.ids import workflow_id_of
from policy.models import Actor, Role
from policy.refusals import PolicyRefusal
from starter.desk import ComplaintUnresponsive
from tests.conftest import Api
from tests.evidence_files import PNG
from tests.factories import CLAIM, SECRET, history_text
from tests.test_api import error_of, file_complaint, new_customer, order_body
from workflows.defect_complaint import DefectComplaintWorkflow

Json = dict[str, Any]

NOTES = "sudo works; the plugin lives in /srv/www/wp-content/plugins/seo-pro"
GRANT: Json = {
    "grant": True,
    "credentials": {"host": "web1.example.net", "username": "deploy", "secret": SECRET, "notes": NOTES},
}
LOG = b"12:01 code requested, none came\n12:21 WhatsApp says the number is not valid\n"


# ----------------------------------------------------------------------------------------------- helpers


async def claim_with_evidence(api: Api, customer_id: str, description: str = CLAIM) -> Json:
    """An invalid-number claim (R6) the customer filed with a screenshot and a log."""
    body = order_body(
        customer_id, "0.75", product={"sku": "vn-uk-whatsapp", "kind": "virtual_number", "name": "UK number"}
    )
    assert (await api.backend().post("/v1/orders", json=body)).status_code == 201
    evidence = [
        {"name": "écran 2FA.png", "content_type": "image/png", "data_base64": base64.b64encode(PNG).decode()},
        {
            "name": "what-happened.txt",
            "content_type": "text/plain",
            "data_base64": base64.b64encode(LOG).decode(),
        },
    ]
    filed = await api.customer(customer_id).post(
        "/v1/complaints",
        json={
            "order_id": body["order_id"],
            "kind": "invalid_number",
            "description": description,
            "evidence": evidence,
        },
    )
    assert filed.status_code == 201, filed.text
    claim: Json = filed.json()
    return claim


def evidence_path(complaint_id: str, ref: str) -> str:
    return f"/v1/complaints/{complaint_id}/evidence/{ref}"


async def granted_defect(api: Api) -> tuple[str, str]:
    """A defect complaint whose customer granted the server access support asked for: (id, customer)."""
    complaint = await file_complaint(api)
    complaint_id, owner = complaint["complaint_id"], complaint["customer_id"]
    asked = await api.support().post(
        f"/v1/complaints/{complaint_id}/access-request", json={"scope": "ssh", "reason": "read the error log"}
    )
    assert asked.json()["status"] == "awaiting_access", asked.text
    granted = await api.customer(owner).post(f"/v1/complaints/{complaint_id}/access", json=GRANT)
    assert granted.json()["access_request"]["granted"] is True, granted.text
    return complaint_id, owner


def reveal_path(complaint_id: str) -> str:
    return f"/v1/complaints/{complaint_id}/credentials/reveal"


async def trail(api: Api, complaint_id: str) -> list[Json]:
    events: list[Json] = (await api.support().get(f"/v1/complaints/{complaint_id}")).json()["events"]
    return events


def reveals(events: list[Json]) -> list[Json]:
    return [event for event in events if event["type"] == "credentials_revealed"]


# -------------------------------------------------------------------------------------------------- R6


async def test_r6_support_and_the_filing_customer_open_the_evidence_bytes_unchanged_others_do_not(
    api: Api,
) -> None:
    owner = new_customer()
    claim = await claim_with_evidence(api, owner)
    complaint_id = claim["complaint_id"]
    shot, log = claim["evidence"]
    assert shot["name"] == "écran 2FA.png" and shot["sha256"] == hashlib.sha256(PNG).hexdigest()

    for reader in (api.support(), api.customer(owner)):
        opened = await reader.get(evidence_path(complaint_id, shot["ref"]))
        assert opened.status_code == 200, opened.text
        assert opened.content == PNG
        assert opened.headers["content-type"] == "image/png"
        assert opened.headers["x-content-type-options"] == "nosniff"
        assert opened.headers["cache-control"] == "no-store"
        assert opened.headers["content-disposition"] == (
            "attachment; filename=\"_cran 2FA.png\"; filename*=UTF-8''%C3%A9cran%202FA.png"
        )
        text = await reader.get(evidence_path(complaint_id, log["ref"]))
        assert text.content == LOG and text.headers["content-type"].startswith("text/plain")
        assert text.headers["content-disposition"] == 'attachment; filename="what-happened.txt"'

    other = await api.customer(new_customer()).get(evidence_path(complaint_id, shot["ref"]))
    assert error_of(other, 404)["code"] == "complaint_not_found", "another customer's: as if none existed"
    backend = await api.backend().get(evidence_path(complaint_id, shot["ref"]))
    assert error_of(backend, 403)["code"] == "forbidden"

    elsewhere = (await claim_with_evidence(api, owner))["evidence"][0]["ref"]
    for ref in ("ev_" + "0" * 32, elsewhere, "../../etc/passwd", "EV_" + shot["ref"][3:]):
        missing = await api.support().get(evidence_path(complaint_id, ref))
        assert error_of(missing, 404)["code"] in ("evidence_not_found", "not_found"), ref
    unknown = await api.support().get(evidence_path(complaint_id, elsewhere))
    assert error_of(unknown, 404)["code"] == "evidence_not_found", (
        "a ref of another complaint is not this one's"
    )
    nowhere = await api.support().get(evidence_path("ord-nothing.invalid_number.00000000", shot["ref"]))
    assert error_of(nowhere, 404)["code"] == "complaint_not_found"


async def test_r6_the_ledger_reads_one_complaints_file_as_stored_on_both_databases(
    any_ledger: Ledger,
) -> None:
    [stored] = await any_ledger.store_evidence(
        "c-1", [EvidenceFile(name="shot.png", content_type="image/png", data=PNG)]
    )
    found = await any_ledger.stored_evidence("c-1", stored.ref)
    assert found is not None and found == (stored, PNG)
    assert await any_ledger.stored_evidence("c-2", stored.ref) is None, "another complaint's ref"
    assert await any_ledger.stored_evidence("c-1", "ev_" + "0" * 32) is None


@pytest.mark.parametrize(
    "damage",
    [
        {"data": PNG[:-1] + b"\x00"},
        {"data": b"<html><script>alert(1)</script>"},
        {"content_type": "text/html"},
    ],
    ids=["a-changed-byte", "other-bytes", "another-type"],
)
async def test_r6_a_tampered_evidence_row_is_refused_and_serves_nothing(api: Api, damage: Json) -> None:
    owner = new_customer()
    claim = await claim_with_evidence(api, owner)
    complaint_id, ref = claim["complaint_id"], claim["evidence"][0]["ref"]
    async with api.desk.ledger.engine.begin() as conn:
        await conn.execute(update(EvidenceRow).where(EvidenceRow.ref == ref).values(**damage))

    for reader in (api.support(), api.customer(owner)):
        refused = await reader.get(evidence_path(complaint_id, ref))
        error = error_of(refused, 409)
        assert error["code"] == "evidence_damaged" and ref in error["message"]
        assert refused.headers["content-type"] == "application/json"
        assert "content-disposition" not in refused.headers
        assert b"script" not in refused.content and PNG[:16] not in refused.content

    with pytest.raises(PolicyRefusal) as caught:
        await api.desk.open_evidence(complaint_id, ref, Actor(role=Role.SUPPORT, id="alice"))
    assert caught.value.code == "evidence_damaged"
    intact = await api.support().get(evidence_path(complaint_id, claim["evidence"][1]["ref"]))
    assert intact.content == LOG, "the other file of the complaint is still served"


# -------------------------------------------------------------------------------------------------- R9


async def test_r9_support_reveals_granted_credentials_and_each_reveal_is_one_event_with_the_agent(
    api: Api,
) -> None:
    complaint_id, _ = await granted_defect(api)
    before = await trail(api, complaint_id)
    notices = len(await api.desk.ledger.outbox(complaint_id=complaint_id))

    answers = []
    for agent in ("alice", "alice", "bob"):
        answer = await api.support(agent).post(reveal_path(complaint_id))
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        answers.append(answer.json())

    for body, agent in zip(answers, ("alice", "alice", "bob"), strict=True):
        assert (body["host"], body["username"], body["secret"], body["notes"]) == (
            "web1.example.net",
            "deploy",
            SECRET,
            NOTES,
        )
        assert body["complaint_id"] == complaint_id and body["revealed_by"] == f"support:{agent}"
    after = await trail(api, complaint_id)
    recorded = reveals(after)
    assert after[: len(before)] == before and len(after) == len(before) + 3, (
        "one event per reveal, nothing else"
    )
    assert [e["actor"] for e in recorded] == ["support:alice", "support:alice", "support:bob"]
    assert [e["seq"] for e in recorded] == [body["event_seq"] for body in answers]
    assert [e["at"] for e in recorded] == [body["revealed_at"] for body in answers]
    assert all(e["detail"]["access_request"] == 1 and e["detail"]["credentials_ref"] for e in recorded)
    assert len(await api.desk.ledger.outbox(complaint_id=complaint_id)) == notices, "nobody is sent a notice"
    state = (await api.support().get(f"/v1/complaints/{complaint_id}")).json()
    assert state["status"] == "under_review", "a reveal changes no status"


async def test_r9_a_customer_or_backend_token_is_refused_the_reveal(api: Api) -> None:
    complaint_id, owner = await granted_defect(api)
    before = await trail(api, complaint_id)
    for caller in (api.customer(owner), api.backend()):
        refused = await caller.post(reveal_path(complaint_id))
        assert error_of(refused, 403)["code"] == "forbidden"
        assert SECRET not in refused.text
    with pytest.raises(PolicyRefusal) as caught:
        await api.desk.reveal_granted_credentials(complaint_id, Actor(role=Role.CUSTOMER, id=owner))
    assert caught.value.code == "forbidden_actor", "the desk refuses a direct caller too"
    assert await trail(api, complaint_id) == before


async def test_r9_the_workflow_itself_refuses_a_reveal_by_anyone_but_support(api: Api) -> None:
    """A direct client past the API and the desk meets the update's validator: nothing is recorded."""
    complaint_id, owner = await granted_defect(api)
    handle = await api.desk.complaint_handle(complaint_id, await api.desk.ledger.get_complaint(complaint_id))
    for actor in (Actor(role=Role.CUSTOMER, id=owner), Actor(role=Role.BACKEND, id="shop")):
        with pytest.raises(PolicyRefusal) as caught:
            await api.desk.update(
                ComplaintUnresponsive(complaint_id),
                handle,
                DefectComplaintWorkflow.reveal_credentials,
                RevealCredentials(actor=actor),
            )
        assert caught.value.code == "forbidden_actor"
    assert not reveals(await trail(api, complaint_id))


async def test_r9_no_reveal_before_access_is_granted(api: Api) -> None:
    complaint = await file_complaint(api)
    complaint_id, owner = complaint["complaint_id"], complaint["customer_id"]
    support = api.support()
    unasked = error_of(await support.post(reveal_path(complaint_id)), 409)
    assert unasked["code"] == "invalid_state" and "no server access was requested" in unasked["message"]
    await support.post(
        f"/v1/complaints/{complaint_id}/access-request", json={"scope": "ssh", "reason": "logs"}
    )
    waiting = error_of(await support.post(reveal_path(complaint_id)), 409)
    assert waiting["code"] == "invalid_state" and "not granted" in waiting["message"]
    claim = await claim_with_evidence(api, owner)
    on_a_claim = error_of(await support.post(reveal_path(claim["complaint_id"])), 409)
    assert on_a_claim["code"] == "invalid_state" and "no server access" in on_a_claim["message"]
    assert not reveals(await trail(api, complaint_id))


async def test_r9_after_the_complaint_ends_the_vault_entry_is_gone_and_a_reveal_is_refused_with_its_reason(
    api: Api,
) -> None:
    complaint_id, _ = await granted_defect(api)
    support = api.support()
    assert (await support.post(reveal_path(complaint_id))).status_code == 200
    fixed = await support.post(f"/v1/complaints/{complaint_id}/fix", json={"note": "patched"})
    assert fixed.json()["status"] == "rectified", fixed.text
    async with api.desk.ledger.engine.connect() as conn:
        kept = (
            await conn.execute(select(VaultSecretRow).where(VaultSecretRow.complaint_id == complaint_id))
        ).all()
    assert kept == [], "the vault entry went with the final event"

    refused = error_of(await support.post(reveal_path(complaint_id)), 409)
    assert refused["code"] == "invalid_state" and "rectified" in refused["message"]
    assert SECRET not in json.dumps(refused)
    assert len(reveals(await trail(api, complaint_id))) == 1, "the refused reveal is not recorded"


async def test_r9_a_vault_entry_gone_while_the_complaint_is_open_is_credentials_destroyed(api: Api) -> None:
    """The entry goes with the final event, in the ledger's transaction; a reveal racing it has recorded
    itself already, then finds the vault empty: refused with its reason, never a 500."""
    complaint_id, _ = await granted_defect(api)
    async with api.desk.ledger.engine.begin() as conn:
        await conn.execute(delete(VaultSecretRow).where(VaultSecretRow.complaint_id == complaint_id))
    refused = error_of(await api.support().post(reveal_path(complaint_id)), 409)
    assert refused["code"] == "credentials_destroyed"
    assert len(reveals(await trail(api, complaint_id))) == 1, (
        "the reveal was recorded before the vault was read"
    )


async def test_r9_the_secret_is_never_in_the_trail_the_complaint_the_history_or_a_kept_answer(
    api: Api,
) -> None:
    complaint_id, owner = await granted_defect(api)
    support = api.support()
    keyed = await support.post(reveal_path(complaint_id), headers={"Idempotency-Key": "reveal-once"})
    assert error_of(keyed, 422)["code"] == "idempotency_key_not_accepted"
    assert not reveals(await trail(api, complaint_id)), "a refused reveal is not recorded"
    revealed = await support.post(reveal_path(complaint_id))
    assert revealed.json()["secret"] == SECRET

    for reader in (support, api.customer(owner)):
        shown = await reader.get(f"/v1/complaints/{complaint_id}")
        assert shown.status_code == 200 and SECRET not in shown.text
        assert "credentials_revealed" in shown.text
    assert SECRET not in json.dumps(
        [e.model_dump(mode="json") for e in await api.desk.ledger.complaint_events(complaint_id)]
    )
    history = await api.desk.client.get_workflow_handle(workflow_id_of(complaint_id)).fetch_history()
    text = history_text(history)
    assert "credentials_revealed" in text, "the search reads the decoded payloads"
    assert SECRET not in text and SECRET not in history.to_json()
    async with api.desk.ledger.engine.connect() as conn:
        kept = (await conn.execute(select(IdempotencyKeyRow))).all()
    assert kept and all(SECRET.encode() not in bytes(row.body or b"") for row in kept)
