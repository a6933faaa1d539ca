"""What an attacker found against `make run`, each as a test over real HTTP where the finding is the API's.

* Text that is no Unicode (a lone surrogate, `"\\ud800"`, is valid JSON) hidden where the API does not look
  at it as text: inside a cursor, as a payload's metadata key, in server credentials. Each is a 422 in the
  contract's error body, with nothing written.
* Existence told by timing: another customer's complaint took a workflow query to refuse, an unknown id
  none. A customer is now refused from the ledger, with no call to Temporal at all.
* R4 counted invisible text: zero-width spaces, Hangul fillers, braille blanks, a letter under sixty
  combining marks. It counts what a reader sees now, in any script.
* R6's evidence was judged by its first bytes: `%PDF-` then HTML, a PNG signature then an SVG script, HTML
  sent as text/plain; and a name such as `../../../../tmp/evil.html` was kept as sent. Each file is now
  decoded whole (Pillow, pypdf) and its name reduced to a safe base name of its type.

Every refusal is checked for having changed nothing: every row of every ledger table, before and after.
Nothing is mocked: uvicorn on a loopback port, the real desk and worker on the time-skipping Temporal
server, a SQLite ledger.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from PIL import Image
from pydantic import ValidationError
from pypdf import PdfWriter
from pypdf.actions import JavaScript
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy import intake, refusals
from policy.evidence import EXTENSIONS, MAX_FILE_BYTES, EvidenceFile, check_evidence, safe_name
from policy.models import ComplaintKind
from policy.refusals import PolicyRefusal
from starter.api.app import create_app
from starter.api.schemas.actions import AccessIn
from starter.api.schemas.codec import PayloadJson
from starter.api.settings import ApiSettings
from starter.desk import ComplaintDesk
from starter.desk.codec import EncryptionCodec
from tests import evidence_files
from tests.conftest import JWT_SECRET, Api, TimeSkippingDesk, in_ledger, served
from tests.factories import (
    BACKEND,
    CLAIM,
    DESCRIPTION,
    PAYLOAD_KEYS,
    POLICY,
    customer,
    number_order,
    software_order,
)
from tests.test_api import error_of, file_complaint, new_customer, order_body, place_order
from tests.test_hostile_input import NUMBER, evidence, no_workflow, refused, settled, snapshot
from tests.test_hostile_input import number_order as number_order_over_http
from tests.test_refund_claim import nothing_written, refused_when_started_directly
from worker import build_worker

Json = dict[str, Any]

LONE_SURROGATE = "\ud800"


def forged_cursor(created_at: str, complaint_id: str) -> str:
    """A cursor as the API encodes one (base64 of a JSON pair), around what an attacker chose."""
    raw = json.dumps([created_at, complaint_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# ---------------------------------------------------------------------------------- text that is no text


@pytest.mark.parametrize(
    "complaint_id",
    [LONE_SURROGATE, "ord-1.major_defect.0000000" + LONE_SURROGATE, "ord-1.major_defect.\x00", "x"],
    ids=["lone-surrogate", "surrogate-in-an-id", "nul", "not-a-complaint-id"],
)
async def test_a_cursor_naming_no_complaint_the_api_made_is_422_invalid_cursor(
    api: Api, complaint_id: str
) -> None:
    """The cursor's id goes into the ledger's query: a lone surrogate cannot be encoded for it (it was a
    500) and a NUL cannot be stored in PostgreSQL text. A cursor only ever names a complaint id."""
    await file_complaint(api)
    before = await settled(api.desk.ledger)
    cursor = forged_cursor("2026-01-01T00:00:00+00:00", complaint_id)

    response = await api.support().get("/v1/complaints", params={"cursor": cursor})

    refused(response, 422, "invalid_cursor")
    assert await snapshot(api.desk.ledger) == before


async def test_a_payload_metadata_key_that_is_no_text_is_422(api: Api) -> None:
    """Temporal's metadata keys are protobuf strings, UTF-8 by definition: a key with a lone surrogate
    cannot become one (it was a 500)."""
    body = '{"payloads": [{"metadata": {"\\ud800": "AAAA"}, "data": "AAAA"}]}'
    before = await settled(api.desk.ledger)

    response = await api.support().post(
        "/codec/decode", content=body.encode(), headers={"Content-Type": "application/json"}
    )

    refused(response, 422, "validation_error")
    assert LONE_SURROGATE not in response.text
    assert await snapshot(api.desk.ledger) == before


async def test_codec_metadata_keys_in_any_script_still_round_trip(api: Api) -> None:
    """The flip side: a key is any UTF-8 text, as protobuf allows."""
    plain = {"metadata": {"encoding": "anNvbi9wbGFpbg==", "clé-ключ": "eA=="}, "data": "InRlc3Qi"}
    [sealed] = await EncryptionCodec(PAYLOAD_KEYS).encode([PayloadJson.model_validate(plain).to_payload()])
    decoded = await api.support().post(
        "/codec/decode", json={"payloads": [PayloadJson.of(sealed).model_dump()]}
    )
    assert decoded.json() == {"payloads": [plain]}


def with_lone_surrogate(body: Json) -> bytes:
    """`body` as JSON text, each `@@` in it spelled as the escape of a lone surrogate."""
    return json.dumps(body).replace("@@", "\\ud800").encode()


async def test_a_lone_surrogate_in_any_text_the_api_takes_is_422_and_changes_nothing(api: Api) -> None:
    """Every free text and name a request carries reaches the ledger or a workflow's history, neither of
    which can hold text that is no Unicode: refused as invalid, field by field, before anything is done."""
    complaint = await file_complaint(api)
    complaint_id, owner = complaint["complaint_id"], complaint["customer_id"]
    on_complaint = f"/v1/complaints/{complaint_id}"
    number = await number_order_over_http(api, new_customer())
    credentials = {"host": "web1.example.com", "username": "support", "secret": "s3cret"}
    requests: list[tuple[httpx.AsyncClient, str, Json, str]] = [
        (api.backend(), "/v1/orders", order_body(new_customer(), product=NUMBER | {"name": "UK @@"}), "name"),
        (api.backend(), f"/v1/activations/act_{number['order_id']}/sms", {"text": "code @@"}, "text"),
        (
            api.customer(number["customer_id"]),
            "/v1/complaints",
            {
                "order_id": number["order_id"],
                "kind": "invalid_number",
                "description": CLAIM,
                "evidence": [{"name": "shot@@.png", "content_type": "image/png", "data_base64": "iVBORw=="}],
            },
            "name",
        ),
        (api.support(), f"{on_complaint}/review", {"decision": "approve", "note": "ok @@"}, "note"),
        (api.support(), f"{on_complaint}/access-request", {"scope": "ssh @@", "reason": "r"}, "scope"),
        (api.support(), f"{on_complaint}/access-request", {"scope": "ssh", "reason": "r @@"}, "reason"),
        (api.support(), f"{on_complaint}/fix", {"note": "fixed @@"}, "note"),
        (api.support(), f"{on_complaint}/replacement", {"sku": "s", "name": "@@", "value": "50"}, "name"),
        (api.customer(owner), f"{on_complaint}/withdraw", {"note": "bye @@"}, "note"),
    ]
    for field in ("host", "username", "notes"):
        grant = {"grant": True, "credentials": credentials | {field: "x @@"}}
        requests.append((api.customer(owner), f"{on_complaint}/access", grant, field))
    before = await settled(api.desk.ledger)

    for client, path, body, field in requests:
        response = await client.post(
            path, content=with_lone_surrogate(body), headers={"Content-Type": "application/json"}
        )
        error = refused(response, 422, "validation_error")
        assert any(f["field"].endswith(f".{field}") for f in error["fields"]), (path, error)

    assert await snapshot(api.desk.ledger) == before
    state = (await api.support().get(on_complaint)).json()
    assert (state["status"], len(state["events"])) == ("under_review", len(complaint["events"]))


def test_r9_a_secret_that_is_no_text_is_refused_as_the_body_is_read() -> None:
    """The access body as the API reads it (JSON text, as it came over HTTP): a lone surrogate in the secret
    must be invalid there, like in every other field: sealed, such a secret could never be opened again,
    and the vault's activity would retry it for ever."""
    grant = {"grant": True, "credentials": {"host": "web1.example.com", "username": "u", "secret": "a @@"}}
    with pytest.raises(ValidationError):
        AccessIn.model_validate(json.loads(with_lone_surrogate(grant)))


# --------------------------------------------------------------------------- existence told by timing

PATIENCE = timedelta(seconds=3)
"""The desk's patience in the tests below: what a request that waits for the stopped worker would take."""


def counted_rpcs(monkeypatch: pytest.MonkeyPatch, client: Client) -> list[str]:
    """The name of every call `client` makes to the Temporal server from now on: queries, updates,
    describes and starts all go out through its service client's one RPC method."""
    service = client.service_client
    calls: list[str] = []
    real = service._rpc_call

    async def counting(rpc: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(rpc)
        return await real(rpc, *args, **kwargs)

    monkeypatch.setattr(service, "_rpc_call", counting)
    return calls


async def test_another_customers_complaint_is_404_without_temporal_like_one_that_does_not_exist(
    env: WorkflowEnvironment, ledger: Ledger, keyring: VaultKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A customer asking for another customer's complaint is refused from the ledger alone, before any call
    to Temporal: with the worker stopped the answer is still an immediate 404, as for an id that does not
    exist, where a workflow query first made it 35 ms against 6 ms (and 503 after the desk's patience
    against 404 with no worker). Reading, answering access, choosing a remedy and withdrawing alike; the
    id of no complaint on the other customer's order too (its workflow id is that of their complaint)."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    desk = TimeSkippingDesk(
        client=env.client, ledger=ledger, keyring=keyring, task_queue=queue, patience=PATIENCE
    )
    order = software_order()
    number = number_order(customer_id=order.customer_id)
    async with build_worker(env.client, ledger, keyring, queue):
        for placed in (order, number):
            await desk.record_order(placed)
        theirs = await desk.file(order, ComplaintKind.MAJOR_DEFECT, DESCRIPTION, customer(order))
        await in_ledger(ledger, theirs.complaint_id)
        activation, _ = await desk.start_activation(number.order_id, "+447700900123", "whatsapp", BACKEND)
        for _ in range(250):  # until the activation's first projection is in the ledger
            if await ledger.activation_of_order(number.order_id) is not None:
                break
            await asyncio.sleep(0.02)
        assert (await desk.get_for(theirs.complaint_id, customer(order))).complaint_id == theirs.complaint_id
    # The worker has stopped: a query or an update would now wait for the desk's patience.
    rpcs = counted_rpcs(monkeypatch, env.client)
    complaint_ids = [
        theirs.complaint_id,
        f"{order.order_id}.major_defect.00000000",
        f"ord-{uuid.uuid4().hex[:10]}.major_defect.{theirs.complaint_id[-8:]}",
    ]
    actions = [
        ("GET", "", None),
        ("POST", "/withdraw", {"note": "bye"}),
        ("POST", "/remedy", {"choice": "refund"}),
        ("POST", "/access", {"grant": False}),
    ]
    async with served(create_app(desk, ApiSettings(jwt_secret=JWT_SECRET))) as base_url:
        api = Api(base_url=base_url, secret=JWT_SECRET, desk=desk)
        try:
            stranger = api.customer(new_customer())
            for complaint_id in complaint_ids:
                for method, action, body in actions:
                    path = f"/v1/complaints/{complaint_id}{action}"
                    response = await stranger.request(method, path, json=body)
                    assert error_of(response, 404)["code"] == "complaint_not_found", path
            assert rpcs == [], "the ledger alone answers a customer about another's complaint"

            unknown = f"act_ord-{uuid.uuid4().hex[:10]}"
            for activation_id in (activation.activation_id, unknown):
                for method, action in (("GET", ""), ("POST", "/cancel")):
                    response = await stranger.request(method, f"/v1/activations/{activation_id}{action}")
                    assert error_of(response, 404)["code"] == "activation_not_found"
            assert rpcs == [], "and about another's activation, or one that does not exist"
        finally:
            await api.close()
    record = await ledger.get_complaint(theirs.complaint_id)
    assert record is not None and [e.type for e in record.state.events] == ["filed"]


# --------------------------------------------------------------------------- R4: invisible characters

INVISIBLE_PADDING = {
    "zero-width-spaces": "\u200b" * 60,
    "hangul-fillers": "\u3164" * 45,
    "braille-blanks": "\u2800" * 45,
    "one-letter-and-60-combining-marks": "a" + "\u0301" * 60,
}
"""The attacker's four descriptions: each was 40 "meaningful" characters or more, and shows next to none."""

BLANK_CODE_POINTS = [
    "\u00ad",  # soft hyphen
    "\u034f",  # combining grapheme joiner
    "\u061c",  # Arabic letter mark
    "\u115f",  # Hangul choseong filler
    "\u1160",  # Hangul jungseong filler
    "\u17b4",  # Khmer vowel inherent aq
    "\u180e",  # Mongolian vowel separator
    "\u200b",  # zero-width space
    "\u200c",  # zero-width non-joiner
    "\u200d",  # zero-width joiner
    "\u200e",  # left-to-right mark
    "\u202e",  # right-to-left override
    "\u2060",  # word joiner
    "\u2063",  # invisible separator
    "\u2066",  # left-to-right isolate
    "\u2800",  # braille pattern blank
    "\u303f",  # ideographic half fill space
    "\u3164",  # Hangul filler
    "\ufe0f",  # variation selector 16
    "\ufeff",  # byte order mark
    "\uffa0",  # halfwidth Hangul filler
    "\U0001d159",  # musical symbol null notehead
    "\U0001d173",  # musical symbol begin beam
    "\U000e0041",  # tag latin capital letter A
    "\U000e0100",  # variation selector 17
    "\x07",  # a control character
]


@pytest.mark.parametrize("description", INVISIBLE_PADDING.values(), ids=INVISIBLE_PADDING.keys())
def test_r4_invisible_characters_are_no_reasons(description: str) -> None:
    assert intake.meaningful_length(description) <= 1
    with pytest.raises(PolicyRefusal) as refused_:
        intake.check_claim(
            software_order(), ComplaintKind.MAJOR_DEFECT, description, 0, datetime.now(UTC), POLICY
        )
    assert refused_.value.code == refusals.INSUFFICIENT_REASONS


@pytest.mark.parametrize("blank", BLANK_CODE_POINTS, ids=lambda c: f"U+{ord(c):04X}")
def test_r4_a_blank_or_invisible_code_point_counts_nothing_wherever_it_is(blank: str) -> None:
    """Default-ignorable code points, format and control characters, marks and the letters and symbols
    that draw as blanks: none is a character a reader sees, between words, inside one or as padding."""
    assert intake.meaningful_length(blank * 40) == 0
    padded = f"{blank}sms{blank} {blank}nev{blank}er{blank * 3} came{blank}"
    assert intake.meaningful_length(padded) == len("sms never came")


@pytest.mark.parametrize(
    ("description", "seen"),
    [
        ("Die Nummer hat den Code nie bekommen, äöü ß é", 45),
        ("Cafe\u0301 cre\u0300me bru\u0302le\u0301e", len("Café crème brûlée")),  # accents as marks
        ("号码从未收到验证码，我等了二十分钟。", 18),  # noqa: RUF001 (a Chinese comma, not a look-alike)
        ("الرقم لم يستقبل رمز واتساب أبدًا", 31),  # a tanween mark on the last alef
        ("המספר לא קיבל את הקוד", 21),
        ("नमस्ते दुनिया", 8),  # the vowel signs and the virama sit on their consonants
        ("😀🙃👍🏽 ok", 7),  # a skin tone is a symbol of its own
        ("1\ufe0f\u20e3 2\ufe0f\u20e3", 3),  # keycaps: a digit, a variation selector, an enclosing mark
        ("👨\u200d👩\u200d👧", 3),  # a family: three emoji joined by zero-width joiners
    ],
    ids=[
        "german",
        "latin-decomposed",
        "chinese",
        "arabic",
        "hebrew",
        "devanagari",
        "emoji",
        "keycaps",
        "zwj",
    ],
)
def test_r4_real_text_in_any_script_counts_what_a_reader_sees(description: str, seen: int) -> None:
    assert intake.meaningful_length(description) == seen


def test_r4_forty_visible_characters_among_invisible_ones_are_enough() -> None:
    description = "\u200b".join("The number never got its code. Asked 3x!")
    assert len("The number never got its code. Asked 3x!") == 40
    assert intake.meaningful_length(description) == 40
    intake.check_claim(
        software_order(), ComplaintKind.MAJOR_DEFECT, description, 0, datetime.now(UTC), POLICY
    )


async def test_r4_a_workflow_started_directly_refuses_invisible_padding(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    """The workflow applies the same count at its start, to a client that skips the desk."""
    order = number_order(placed_at=await desk.now())
    padded = "no sms" + INVISIBLE_PADDING["zero-width-spaces"]
    assert await refused_when_started_directly(desk, order, padded) == "insufficient_reasons"
    await nothing_written(ledger)


@pytest.mark.parametrize("description", INVISIBLE_PADDING.values(), ids=INVISIBLE_PADDING.keys())
async def test_r4_invisible_padding_over_http_is_422_insufficient_reasons_and_writes_nothing(
    api: Api, description: str
) -> None:
    order = await place_order(api, new_customer())
    before = await settled(api.desk.ledger)

    response = await api.customer(order["customer_id"]).post(
        "/v1/complaints",
        json={"order_id": order["order_id"], "kind": "major_defect", "description": description},
    )

    refused(response, 422, "insufficient_reasons")
    assert await snapshot(api.desk.ledger) == before
    await no_workflow(api, order["order_id"], ComplaintKind.MAJOR_DEFECT)


# ----------------------------------------------------------------------------- R6: evidence, checked whole

SVG_SCRIPT = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(document.domain)</script></svg>'
)
HTML = b"<!DOCTYPE html><html><body><script>fetch('/v1/complaints')</script></body></html>"


def pdf_with(change: Callable[[PdfWriter], object]) -> bytes:
    """A one-page PDF written by pypdf, changed by `change` before it is written."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    change(writer)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _open_action(writer: PdfWriter) -> None:
    script = DictionaryObject(
        {NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("app.alert(1)")}
    )
    writer._root_object[NameObject("/OpenAction")] = script


def _fit_on_open(writer: PdfWriter) -> None:
    """What LaTeX and office suites write: open at the first page, fitted to the window."""
    page = writer.pages[0].indirect_reference
    writer._root_object[NameObject("/OpenAction")] = ArrayObject([page, NameObject("/Fit")])


def bomb(pixels_per_side: int = 6000) -> bytes:
    """A PNG of a few kilobytes that decodes to 36 million pixels."""
    buffer = io.BytesIO()
    Image.new("1", (pixels_per_side, pixels_per_side)).save(buffer, format="PNG")
    return buffer.getvalue()


REAL_FILES = {
    "png": ("image/png", evidence_files.image("image/png")),
    "jpeg": ("image/jpeg", evidence_files.image("image/jpeg")),
    "gif": ("image/gif", evidence_files.image("image/gif")),
    "webp": ("image/webp", evidence_files.image("image/webp")),
    "pdf": ("application/pdf", evidence_files.pdf(pages=2)),
    "pdf-fit-on-open": ("application/pdf", pdf_with(_fit_on_open)),
    "text": ("text/plain", "12:01 code requested — none came\n12:21 expired\n".encode()),
    "text-quoting-markup": ("text/plain", b"the page said: <html><body>500</body></html>\n"),
    "text-with-bom": ("text/plain", "\ufeff12:01 ждал код\n".encode()),
    "png-of-5-mib": ("image/png", evidence_files.png_of(MAX_FILE_BYTES)),
}

HOSTILE_FILES = {
    "pdf-header-then-html": ("application/pdf", b"%PDF-1.4\n" + HTML, "does not parse as a PDF"),
    "png-signature-then-svg": (
        "image/png",
        b"\x89PNG\r\n\x1a\n" + SVG_SCRIPT,
        "does not decode as a whole PNG",
    ),
    "html-as-text": ("text/plain", HTML, "starts as markup"),
    "svg-as-text": ("text/plain", b"\n  \t" + SVG_SCRIPT, "starts as markup"),
    "xml-as-text": ("text/plain", b'<?xml version="1.0"?>' + SVG_SCRIPT, "starts as markup"),
    "html-after-a-bom-as-text": ("text/plain", "\ufeff\u200b<html>".encode(), "starts as markup"),
    "truncated-png": ("image/png", evidence_files.PNG[:-30], "does not decode as a whole PNG"),
    "truncated-jpeg": (
        "image/jpeg",
        evidence_files.image("image/jpeg", (400, 300))[:-400],
        "as a whole JPEG",
    ),
    "a-gif-said-to-be-webp": ("image/webp", evidence_files.image("image/gif"), "as a whole WEBP"),
    "a-decompression-bomb": ("image/png", bomb(), "more than 25,000,000 pixels"),
    "pdf-javascript-on-open": (
        "application/pdf",
        pdf_with(_open_action),
        "an action that runs when it is opened",
    ),
    "pdf-document-javascript": (
        "application/pdf",
        pdf_with(lambda writer: writer.add_open_action(JavaScript("app.alert(1)"))),
        "document JavaScript",
    ),
    "pdf-embedded-file": (
        "application/pdf",
        pdf_with(lambda writer: writer.add_attachment("evil.html", HTML)),
        "embedded files",
    ),
    "pdf-encrypted": ("application/pdf", pdf_with(lambda writer: writer.encrypt("secret")), "encrypted"),
    "pdf-without-a-page": ("application/pdf", evidence_files.pdf(pages=0), "no page"),
}


@pytest.mark.parametrize(("content_type", "data"), REAL_FILES.values(), ids=REAL_FILES.keys())
def test_r6_real_files_of_each_accepted_type_pass_whole(content_type: str, data: bytes) -> None:
    check_evidence([EvidenceFile(name="evidence", content_type=content_type, data=data)])


@pytest.mark.parametrize(("content_type", "data", "why"), HOSTILE_FILES.values(), ids=HOSTILE_FILES.keys())
def test_r6_a_file_that_is_not_wholly_its_type_is_rejected_saying_why(
    content_type: str, data: bytes, why: str
) -> None:
    with pytest.raises(PolicyRefusal) as refused_:
        check_evidence([EvidenceFile(name="evidence", content_type=content_type, data=data)])
    assert refused_.value.code == refusals.EVIDENCE_REJECTED
    assert refused_.value.message.startswith(
        f"evidence{EXTENSIONS[content_type][0]}: the file's content is not"
    )
    assert why in refused_.value.message


@pytest.mark.parametrize(
    ("name", "content_type", "kept"),
    [
        ("../../../../tmp/evil.html", "image/png", "evil.html.png"),
        ("..\\..\\Windows\\evil.png", "image/png", "evil.png"),
        ("C:\\Users\\me\\Desktop\\2fa screen.png", "image/png", "2fa screen.png"),
        ("/etc/passwd", "text/plain", "passwd.txt"),
        ("..", "image/png", "attachment.png"),
        ("../", "application/pdf", "attachment.pdf"),
        (" .htaccess ", "text/plain", "htaccess.txt"),
        ("notes.TXT", "text/plain", "notes.TXT"),
        ("sms.log", "text/plain", "sms.log"),
        ("photo.jpeg", "image/jpeg", "photo.jpeg"),
        ("photo", "image/jpeg", "photo.jpg"),
        ("sh\u200bot\u2066.png\u2069", "image/png", "shot.png"),
        ("invoice\u202efdp.exe", "application/pdf", "invoicefdp.exe.pdf"),
        ("a:b|c?.png", "image/png", "a_b_c_.png"),
        ("2fa\n\tscreen.png", "image/png", "2fa screen.png"),
        ("скриншот 2FA.png", "image/png", "скриншот 2FA.png"),
        ("x" * 250 + ".html", "image/png", "x" * 250 + ".png"),
    ],
)
def test_r6_a_file_name_is_kept_as_a_safe_base_name_of_its_type(
    name: str, content_type: str, kept: str
) -> None:
    """No directory, no `..`, no control, format or bidi character, and the ending of the type the bytes
    were checked as: whoever saves the file saves what was checked, where they chose."""
    assert safe_name(name, content_type) == kept
    assert EvidenceFile(name=name, content_type=content_type, data=b"x").name == kept
    assert safe_name(kept, content_type) == kept, "a kept name is kept as it is"


ATTACKERS_FILES = {
    "pdf-header-then-html": ("shot.pdf", "application/pdf", b"%PDF-1.4\n" + HTML),
    "png-signature-then-svg": ("shot.png", "image/png", b"\x89PNG\r\n\x1a\n" + SVG_SCRIPT),
    "html-as-text": ("log.txt", "text/plain", HTML),
}


@pytest.mark.parametrize(
    ("name", "content_type", "data"), ATTACKERS_FILES.values(), ids=ATTACKERS_FILES.keys()
)
async def test_r6_the_attackers_files_are_422_evidence_rejected_and_nothing_is_stored(
    api: Api, name: str, content_type: str, data: bytes
) -> None:
    customer_id = new_customer()
    order = await number_order_over_http(api, customer_id)
    attachments = [evidence(evidence_files.PNG), evidence(data, content_type, name)]
    before = await settled(api.desk.ledger)

    response = await api.customer(customer_id).post(
        "/v1/complaints",
        json={
            "order_id": order["order_id"],
            "kind": "invalid_number",
            "description": CLAIM,
            "evidence": attachments,
        },
    )

    error = refused(response, 422, "evidence_rejected")
    assert error["message"].startswith(f"{name}: the file's content is not {content_type}: it "), error
    assert await snapshot(api.desk.ledger) == before
    await no_workflow(api, order["order_id"], ComplaintKind.INVALID_NUMBER)


async def test_r6_a_path_in_a_file_name_is_reduced_to_its_base_name_in_the_ledger(api: Api) -> None:
    customer_id = new_customer()
    order = await number_order_over_http(api, customer_id)
    screenshot = evidence(evidence_files.PNG, "image/png", "../../../../tmp/evil.html")

    response = await api.customer(customer_id).post(
        "/v1/complaints",
        json={
            "order_id": order["order_id"],
            "kind": "invalid_number",
            "description": CLAIM,
            "evidence": [screenshot],
        },
    )

    assert response.status_code == 201, response.text
    [shown] = response.json()["evidence"]
    assert shown["name"] == "evil.html.png"
    stored = await api.desk.ledger.evidence_data(shown["ref"])
    assert stored is not None and stored[1].name == "evil.html.png"
    assert stored[1].data == evidence_files.PNG
