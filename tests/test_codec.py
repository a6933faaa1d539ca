"""Payload encryption (`starter.desk.codec`): what Temporal stores is ciphertext, rotated keys still open, and
support (only support) reads histories in clear through the codec endpoint."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from ledger.repository import Ledger
from policy.ids import workflow_id_of
from policy.models import Role
from starter.binaries import tool_path
from starter.desk import ComplaintDesk
from starter.desk.codec import ENCODING, KEY_ID, EncryptionCodec, PayloadKeyring, PayloadUndecodable
from starter.desk.codec import encrypting_converter as converter_for
from tests.conftest import Api, TimeSkippingDesk, in_ledger
from tests.factories import (
    PAYLOAD_KEYS,
    POLICY,
    SUPPORT,
    credentials,
    customer,
    history_text,
    raw_payloads,
    software_order,
)
from worker import build_worker

DESCRIPTION = "Zanzibar-quokka: the export module truncates every invoice after the 40th line item."
PRICE = "987.65"


def undecrypted_text(history: WorkflowHistory) -> str:
    """The history's JSON and every payload's bytes as the server holds them, base64 undone."""
    parts = [history.to_json()]
    for payload in raw_payloads(history):
        parts.append(base64.b64decode(payload["data"]).decode("utf-8", errors="replace"))
        parts += [base64.b64decode(v).decode(errors="replace") for v in payload["metadata"].values()]
    return "\n".join(parts)


async def granted_complaint(desk: ComplaintDesk) -> tuple[str, WorkflowHistory]:
    """A defect complaint with a distinctive description and price, access granted: its history."""
    order = software_order(price=PRICE)
    state = await desk.file_defect_complaint(order, DESCRIPTION, filed_by=customer(order), policy=POLICY)
    await desk.request_access(state.complaint_id, SUPPORT, scope="ssh", reason="inspect the export")
    await desk.grant_access(state.complaint_id, customer(order), credentials())
    handle = desk.client.get_workflow_handle(workflow_id_of(state.complaint_id))
    return state.complaint_id, await handle.fetch_history()


# ------------------------------------------------------------------------------------------ the codec


async def test_a_payload_leaves_encrypted_under_the_current_key_and_comes_back_whole() -> None:
    codec = EncryptionCodec(PayloadKeyring.generate("k1"))
    plain = Payload(metadata={"encoding": b"json/plain"}, data=DESCRIPTION.encode())
    [sealed] = await codec.encode([plain])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"k1"
    assert DESCRIPTION.encode() not in sealed.data and b"json/plain" not in sealed.data
    assert await codec.decode([sealed]) == [plain]


async def test_rotation_old_keys_still_decrypt_and_the_new_key_encrypts() -> None:
    old = PayloadKeyring.generate("k1")
    rotated = old.rotated(PayloadKeyring.generate("k2"))
    assert rotated.key_ids == ("k2", "k1") and rotated.current == "k2"
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"hello"')
    [sealed_before] = await EncryptionCodec(old).encode([plain])
    [sealed_after] = await EncryptionCodec(rotated).encode([plain])
    assert sealed_after.metadata[KEY_ID] == b"k2"
    assert await EncryptionCodec(rotated).decode([sealed_before, sealed_after]) == [plain, plain]
    assert PayloadKeyring.parse(rotated.spec()).key_ids == ("k2", "k1"), "the spec keeps the order"
    with pytest.raises(PayloadUndecodable, match="no key 'k2'"):
        await EncryptionCodec(old).decode([sealed_after])


async def test_a_tampered_or_foreign_payload_does_not_decrypt() -> None:
    codec = EncryptionCodec(PAYLOAD_KEYS)
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])
    tampered = Payload()
    tampered.CopyFrom(sealed)
    tampered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(PayloadUndecodable):
        await codec.decode([tampered])
    other = EncryptionCodec(PayloadKeyring.generate(PAYLOAD_KEYS.current))  # same id, another key
    with pytest.raises(PayloadUndecodable):
        await other.decode([sealed])


async def test_payloads_written_before_encryption_pass_through() -> None:
    """A complaint started by the previous release keeps its plaintext history readable."""
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"a": 1}')
    assert await EncryptionCodec(PAYLOAD_KEYS).decode([plain]) == [plain]


async def test_failure_messages_are_encrypted_too() -> None:
    """An error's text can quote a customer's description: it travels in the encoded attributes."""
    converter = converter_for(PAYLOAD_KEYS)
    failure = Failure()
    await converter.encode_failure(ApplicationError(f"refused: {DESCRIPTION}"), failure)
    assert DESCRIPTION not in failure.message and DESCRIPTION not in str(failure)
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    back = await converter.decode_failure(failure)
    assert DESCRIPTION in str(back)


# ----------------------------------------------------------------------------- in the server's history


async def test_the_servers_history_holds_no_description_amount_or_credentials_in_clear(
    desk: ComplaintDesk,
) -> None:
    complaint_id, history = await granted_complaint(desk)
    stored = undecrypted_text(history)
    secret = credentials().secret.get_secret_value()
    for clear in (DESCRIPTION, "Zanzibar", PRICE, "shop.example.net", secret):
        assert clear not in stored
    payloads = raw_payloads(history, data_only=True)
    assert len(payloads) >= 5, "the input, activity calls and updates all carry payloads"
    encodings = {base64.b64decode(p["metadata"]["encoding"]) for p in payloads}
    assert encodings == {ENCODING}, "every payload is encrypted"

    # The same history, decrypted with the keys: the facts are there, so the check above can fail.
    decrypted = history_text(history)
    assert DESCRIPTION in decrypted and PRICE in decrypted and complaint_id in decrypted
    assert secret not in decrypted, "the credentials are sealed by the vault before they reach Temporal"


async def test_rotation_a_running_complaint_continues_under_a_new_key(
    env: WorkflowEnvironment, ledger: Ledger, keyring: Any
) -> None:
    """The worker, the API and the CLI restart with the new key first: complaints started under the old
    one go on, their old payloads decrypting and their new ones sealed with the new key."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    rotated = PAYLOAD_KEYS.rotated(PayloadKeyring.generate("rotated"))
    old_client = env.client
    target = old_client.service_client.config.target_host
    new_client = await Client.connect(
        target, namespace=old_client.namespace, data_converter=converter_for(rotated)
    )
    order = software_order()

    # No sticky cache: the test server would keep the workflow's next task for this worker after it stops.
    async with build_worker(old_client, ledger, keyring, queue, max_cached_workflows=0):
        before = TimeSkippingDesk(client=old_client, ledger=ledger, keyring=keyring, task_queue=queue)
        state = await before.file_defect_complaint(
            order, DESCRIPTION, filed_by=customer(order), policy=POLICY
        )
        await in_ledger(ledger, state.complaint_id)  # its first activity done before this worker stops
    async with build_worker(new_client, ledger, keyring, queue):
        after = TimeSkippingDesk(client=new_client, ledger=ledger, keyring=keyring, task_queue=queue)
        state = await after.withdraw(state.complaint_id, customer(order), note="solved it myself")
    assert state.status.value == "withdrawn"

    history = await new_client.get_workflow_handle(workflow_id_of(state.complaint_id)).fetch_history()
    payloads = raw_payloads(history, data_only=True)
    key_ids = {base64.b64decode(p["metadata"][KEY_ID]).decode() for p in payloads}
    assert key_ids == {PAYLOAD_KEYS.current, "rotated"}
    with pytest.raises(PayloadUndecodable):  # the old ring alone cannot read what the new key sealed
        await EncryptionCodec(PAYLOAD_KEYS).decode(
            [
                Payload(
                    metadata={k: base64.b64decode(v) for k, v in p["metadata"].items()},
                    data=base64.b64decode(p["data"]),
                )
                for p in payloads
            ]
        )


# ------------------------------------------------------------------------------------ codec endpoint


async def test_support_decodes_a_history_through_the_codec_endpoint(api: Api) -> None:
    _, history = await granted_complaint(api.desk)
    payloads = raw_payloads(history)
    response = await api.support().post("/codec/decode", json={"payloads": payloads})
    assert response.status_code == 200, response.text
    decoded = response.json()["payloads"]
    assert len(decoded) == len(payloads)
    text = "\n".join(base64.b64decode(p["data"]).decode(errors="replace") for p in decoded)
    assert DESCRIPTION in text and PRICE in text
    assert credentials().secret.get_secret_value() not in text
    encodings = {base64.b64decode(p["metadata"]["encoding"]) for p in decoded}
    assert ENCODING not in encodings and b"json/plain" in encodings


async def test_the_endpoint_decodes_but_seals_nothing(api: Api) -> None:
    """Sealing is the worker's proof that the desk sent an input (starter.desk.sealed): an endpoint that
    sealed whatever a support token sent would let it forge one, so there is none."""
    plain = {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()}, "data": "InRlc3Qi"}
    support = api.support()
    encode = await support.post("/codec/encode", json={"payloads": [plain]})
    assert encode.status_code in (404, 405) and "payloads" not in encode.text
    [sealed] = await EncryptionCodec(PAYLOAD_KEYS).encode(
        [Payload(metadata={"encoding": b"json/plain"}, data=b'"test"')]
    )
    body = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in sealed.metadata.items()},
                "data": base64.b64encode(sealed.data).decode(),
            }
        ]
    }
    decoded = await support.post("/codec/decode", json=body)
    assert decoded.json() == {"payloads": [plain]}


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.BACKEND])
async def test_only_support_may_decode(api: Api, role: Role) -> None:
    _, history = await granted_complaint(api.desk)
    body = {"payloads": raw_payloads(history)}
    refused = await api.as_(role, "cust-1" if role is Role.CUSTOMER else "shop").post(
        "/codec/decode", json=body
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert DESCRIPTION not in refused.text
    anonymous = await api.client().post("/codec/decode", json=body)
    assert anonymous.status_code == 401 and DESCRIPTION not in anonymous.text


async def test_bad_payloads_are_a_clear_422(api: Api) -> None:
    support = api.support()
    not_base64 = await support.post("/codec/decode", json={"payloads": [{"metadata": {}, "data": "%%%"}]})
    assert not_base64.status_code == 422 and not_base64.json()["error"]["code"] == "validation_error"
    [foreign] = await EncryptionCodec(PayloadKeyring.generate("elsewhere")).encode([Payload(data=b"1")])
    body = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in foreign.metadata.items()},
                "data": base64.b64encode(foreign.data).decode(),
            }
        ]
    }
    undecodable = await support.post("/codec/decode", json=body)
    assert undecodable.status_code == 422, undecodable.text
    assert undecodable.json()["error"] == {
        "code": "payload_undecodable",
        "message": "a payload does not decrypt: no key 'elsewhere' on the keyring",
    }


async def test_the_temporal_ui_origin_may_call_the_codec_from_a_browser(api: Api) -> None:
    preflight = await api.client().options(
        "/codec/decode",
        headers={
            "Origin": "http://localhost:8233",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:8233"
    assert preflight.headers["access-control-allow-credentials"] == "true", "the UI sends the console's pass"
    assert "origin" in preflight.headers["vary"].lower()
    elsewhere = await api.client().options(
        "/codec/decode",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert elsewhere.status_code == 403
    assert "access-control-allow-origin" not in elsewhere.headers
    assert "access-control-allow-credentials" not in elsewhere.headers
    # tests/test_codec_session.py: the UI's calls with the console's cookie instead of a token.


async def test_the_temporal_cli_shows_a_history_decrypted_through_the_endpoint(
    api: Api, env: WorkflowEnvironment
) -> None:
    """What support runs: `temporal workflow show --codec-endpoint .../codec --codec-auth "Bearer ..."`."""
    complaint_id, _ = await granted_complaint(api.desk)
    common = [
        tool_path("temporal"),
        "workflow",
        "show",
        "--workflow-id",
        workflow_id_of(complaint_id),
        "--address",
        env.client.service_client.config.target_host,
        "--output",
        "json",
    ]
    codec = [
        "--codec-endpoint",
        f"{api.base_url}/codec",
        "--codec-auth",
        f"Bearer {api.token(Role.SUPPORT, 'alice')}",
    ]

    async def show(*extra: str) -> str:
        process = await asyncio.create_subprocess_exec(
            *common, *extra, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return out.decode()

    def payload_text(shown: str) -> str:
        return "\n".join(
            base64.b64decode(p["data"]).decode(errors="replace")
            for p in raw_payloads(WorkflowHistory.from_json("x", shown))
        )

    assert DESCRIPTION not in payload_text(await show())
    assert DESCRIPTION in payload_text(await show(*codec))
