"""The processes' logs (docs/logging.md): `refund-desk worker` and `refund-desk serve` as real processes on
the dev server, configured only by their environment, take a complaint with a description, a customer's
email address, an access request answered with credentials and revealed by support, and the link from
the customer's email (sent by the worker's dispatcher to a real SMTP sink) opened with its token. Then
every line either process wrote to stderr is a JSON event with its timestamp, level, logger and event;
each line about the complaint names it and its workflow (the API's, its request too); and no secret of
the scenario is anywhere in them. The level and format settings are checked on the real entry points.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from dispatch.mail_sink import Mail, MailSink, list_mail
from ledger.vault import VaultKeyring
from policy.ids import workflow_id_of
from policy.models import Role
from starter.api.auth import mint_token
from starter.telemetry.redaction import redact_value
from tests.factories import PAYLOAD_KEYS
from tests.test_end_to_end import free_port, refund_desk, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = str(Path(sys.executable).parent / "refund-desk")
REQUIRED = ("timestamp", "level", "logger", "event")
Json = dict[str, Any]


class Scenario:
    """The secrets of one run, each distinctive enough that finding it anywhere means it leaked."""

    def __init__(self) -> None:
        marker = uuid.uuid4().hex[:12]
        self.customer_id = f"cust-{marker[:8]}"
        self.email = f"ada.lovelace.{marker}@example.org"
        self.description = (
            f"The invoicing plugin {marker} corrupts every PDF it writes since version 4.2; "
            "support ticket attached."
        )
        self.password = f"pw-{uuid.uuid4().hex}-Tr0ub4dor&3"
        self.secret = "logs-" + uuid.uuid4().hex * 2
        self.bearer: list[str] = []
        self.link_token = ""

    def auth(self, role: Role, sub: str) -> dict[str, str]:
        token = mint_token(self.secret, role, sub)
        self.bearer.append(token)
        return {"Authorization": f"Bearer {token}"}

    def secrets(self) -> dict[str, str]:
        found = {
            "password": self.password,
            "description": self.description,
            "description's marker": self.description.split()[3],
            "email": self.email,
            "link token": self.link_token,
        }
        found |= {f"bearer token {n}": token for n, token in enumerate(self.bearer)}
        return found


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def mail_with_link(folder: Path, address: str, log: Path) -> Mail:
    """The first message to `address` with a link to the complaint, once the dispatcher sent it."""
    for _ in range(300):
        for mail in list_mail(folder):
            if address in mail.recipient and "?token=" in mail.text:
                return mail
        await asyncio.sleep(0.1)
    raise AssertionError(f"no email to the customer: {[m.subject for m in list_mail(folder)]} {tail(log)}")


async def drive(http: httpx.AsyncClient, run: Scenario, sink: Path, log: Path) -> tuple[str, dict[str, str]]:
    """Order, complaint, access asked, granted and revealed, the email's link opened; returns the complaint
    id and the request ids the API echoed, by what the request did."""
    backend, support = run.auth(Role.BACKEND, "shop"), run.auth(Role.SUPPORT, "alice")
    customer = run.auth(Role.CUSTOMER, run.customer_id)
    order_id = f"ord-{uuid.uuid4().hex[:10]}"
    order = {
        "order_id": order_id,
        "customer_id": run.customer_id,
        "product": {"sku": "plugin-invoice", "kind": "software", "name": "Invoice plugin"},
        "amount": "59.00",
        "currency": "EUR",
        "placed_at": datetime.now(UTC).isoformat(),
        "customer_email": run.email,
    }
    placed = await http.post("/v1/orders", json=order, headers=backend)
    assert placed.status_code == 201, placed.text
    body = {"order_id": order_id, "kind": "major_defect", "description": run.description}
    filed = await http.post("/v1/complaints", json=body, headers={**customer, "X-Request-ID": "file-it.1"})
    assert filed.status_code == 201, filed.text
    complaint_id: str = filed.json()["complaint_id"]
    path = f"/v1/complaints/{complaint_id}"
    asked = await http.post(
        f"{path}/access-request",
        json={"scope": "ssh to the web host", "reason": "reproduce"},
        headers=support,
    )
    assert asked.json()["status"] == "awaiting_access", asked.text
    credentials = {"host": "shop.example.net", "username": "deploy", "secret": run.password}
    granted = await http.post(
        f"{path}/access", json={"grant": True, "credentials": credentials}, headers=customer
    )
    assert granted.status_code == 200, granted.text
    revealed = await http.post(f"{path}/credentials/reveal", json={}, headers=support)
    assert revealed.status_code == 200 and run.password in revealed.text, revealed.text

    email = await mail_with_link(sink, run.email, log)
    link = re.search(r"https?://\S+\?token=(\S+)", email.text)
    assert link is not None, email.text
    run.link_token = link.group(1)
    opened = await http.get(link.group(0).replace("/my/complaints/", "/v1/complaints/", 1))
    assert opened.status_code == 200, opened.text
    insane = await http.get(path, headers={**support, "X-Request-ID": "x" * 129})
    assert insane.status_code == 200
    return complaint_id, {
        "filing": filed.headers["x-request-id"],
        "link": opened.headers["x-request-id"],
        "insane": insane.headers["x-request-id"],
    }


def events(log: Path) -> list[Json]:
    """Every line of a process's stderr, each parsed as JSON (a line that is not fails here)."""
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"{log.name}: not a JSON line: {line!r}") from None
        assert isinstance(event, dict), line
        parsed.append(event)
    return parsed


def mentions(event: Json, *ids: str) -> bool:
    text = json.dumps(event)
    return any(one in text for one in ids)


def sdk_debug(event: Json) -> bool:
    """The SDK's own debug lines, which print each task it polls (its ids and its encrypted payloads)
    before any of the desk's code runs for it: they name the workflow in their text only."""
    return event["level"] == "debug" and str(event["logger"]).startswith("temporalio.")


async def test_every_line_of_the_worker_and_the_api_is_json_names_its_complaint_and_keeps_every_secret(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    run = Scenario()
    port = free_port()
    with MailSink(0, tmp_path / "mail") as sink:
        environment = {
            **os.environ,
            "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
            "REFUND_DESK_TASK_QUEUE": f"logs-{uuid.uuid4().hex[:8]}",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/ledger.db",
            "REFUND_DESK_VAULT_KEYS": VaultKeyring.generate().spec(),
            "REFUND_DESK_PAYLOAD_KEYS": PAYLOAD_KEYS.spec(),
            "REFUND_DESK_JWT_SECRET": run.secret,
            "REFUND_DESK_SMTP_URL": sink.url,
            "REFUND_DESK_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "REFUND_DESK_DISPATCH_INTERVAL": "0.2",
            "REFUND_DESK_LOG_LEVEL": "debug",  # every line the desk can write, to look for secrets in
        }
        environment.pop("REFUND_DESK_LOG_FORMAT", None)
        migrate = await asyncio.to_thread(subprocess.run, [SCRIPT, "migrate"], cwd=ROOT, env=environment)
        assert migrate.returncode == 0
        worker_log, api_log = tmp_path / "worker.stderr", tmp_path / "api.stderr"
        serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            with (
                refund_desk(["worker"], environment, worker_log),
                refund_desk(serve, environment, api_log) as api,
            ):
                await wait_healthy(http, api, api_log)
                complaint_id, request_ids = await drive(http, run, sink.folder, worker_log)
    workflow_id = workflow_id_of(complaint_id)
    worker, served = events(worker_log), events(api_log)

    for event in worker + served:
        assert all(key in event for key in REQUIRED), event
        assert datetime.fromisoformat(event["timestamp"]).utcoffset() == timedelta(0), event
    about = [e for e in worker + served if mentions(e, complaint_id, workflow_id) and not sdk_debug(e)]
    for event in about:
        assert event.get("complaint_id") == complaint_id and event.get("workflow_id") == workflow_id, event
    api_lines = [e for e in about if e in served]
    assert api_lines and all(e.get("request_id") for e in api_lines), api_lines
    access_lines = [e for e in api_lines if e["logger"] == "uvicorn.access"]
    assert {e["request_id"] for e in access_lines} >= {request_ids["filing"], request_ids["link"]}
    assert request_ids["filing"] == "file-it.1", "a sane X-Request-ID is the request's id"
    assert re.fullmatch(r"[0-9a-f]{32}", request_ids["insane"]), "an insane one is replaced"
    sent = [e for e in worker if e["event"] == "delivery sent" and e.get("complaint_id") == complaint_id]
    assert sent and all(e["channel"] == "email" for e in sent), "the dispatcher's lines name the complaint"
    activities = {e.get("activity_type") for e in worker if e.get("complaint_id") == complaint_id}
    assert {"record_transition", "store_credentials"} <= activities, activities

    everything = worker_log.read_text() + api_log.read_text()
    assert "[redacted]" in everything, "the link's token was in the access log's path, and taken out"
    for name, secret in run.secrets().items():
        assert secret and secret not in everything, f"the {name} is in the logs"


def entry_point(code: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`code` after `configure_process_logging()`, in a fresh interpreter whose environment has no
    REFUND_DESK_LOG_* but `settings`."""
    script = (
        f"from starter.telemetry.logs import configure_process_logging\nconfigure_process_logging()\n{code}"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFUND_DESK_LOG_")} | settings
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


LOG_EACH_LEVEL = """
import logging
log = logging.getLogger("refund_desk.test")
log.debug("a debug line")
log.info("an info line")
log.warning("a warning line")
log.error("an error line")
access = logging.getLogger("uvicorn.access")
access.setLevel(logging.DEBUG)  # as `refund-desk serve --log-level debug` sets it
access.info("an access line")
"""


DEBUG, INFO, WARNING, ERROR, ACCESS = (
    "a debug line",
    "an info line",
    "a warning line",
    "an error line",
    "an access line",
)

LEVEL_OF = {DEBUG: "debug", INFO: "info", WARNING: "warning", ERROR: "error", ACCESS: "info"}


@pytest.mark.parametrize(
    ("level", "shown"),
    [
        ("DEBUG", [DEBUG, INFO, WARNING, ERROR, ACCESS]),
        ("info", [INFO, WARNING, ERROR, ACCESS]),
        ("WARNING", [WARNING, ERROR]),
        ("error", [ERROR]),
    ],
)
def test_the_level_setting_filters_what_a_process_writes(level: str, shown: list[str]) -> None:
    """uvicorn's access logger has a level of its own (DEBUG here): the setting holds it back all the same."""
    done = entry_point(LOG_EACH_LEVEL, REFUND_DESK_LOG_LEVEL=level, REFUND_DESK_LOG_FORMAT="json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["event"] for line in lines] == shown, done.stderr
    assert [line["level"] for line in lines] == [LEVEL_OF[event] for event in shown]
    assert done.stdout == "", "logs go to stderr, never into a command's output"


def test_the_default_is_json_at_info_and_console_is_text_for_a_person() -> None:
    default = entry_point(LOG_EACH_LEVEL)
    assert [json.loads(line)["event"] for line in default.stderr.splitlines()] == [
        INFO,
        WARNING,
        ERROR,
        ACCESS,
    ]
    console = entry_point(
        LOG_EACH_LEVEL + 'log.info("mail for ada@example.org")', REFUND_DESK_LOG_FORMAT="console"
    )
    assert "a warning line" in console.stderr and not console.stderr.lstrip().startswith("{")
    assert "ada@example.org" not in console.stderr, "the console format is redacted the same"


def test_a_wrong_log_setting_is_one_line_before_anything_starts() -> None:
    done = subprocess.run(
        [SCRIPT, "token", "--role", "support", "--sub", "alice"],
        cwd=ROOT,
        env={**os.environ, "REFUND_DESK_LOG_LEVEL": "loud", "REFUND_DESK_JWT_SECRET": "s" * 40},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: REFUND_DESK_LOG_LEVEL") and done.stderr.count("\n") == 1, (
        done.stderr
    )
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("value", "secret"),
    [
        ("Authorization: Bearer abc.DEF-123_x", "abc.DEF-123_x"),
        ("GET /my/complaints/c?token=t0k3n&x=1", "t0k3n"),
        ("GET /console/sign-in?link=l1nk", "l1nk"),
        ("a JWT eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl in text", "eyJhbGciOiJIUzI1NiJ9"),
        ("sent to ada.lovelace+desk@mail.example.org", "ada.lovelace+desk@mail.example.org"),
        ("smtp://deploy:hunter2@mail.example.net:587", "hunter2"),
        ({"credentials": {"secret": "s3cr3t"}}, "s3cr3t"),
        ({"customer_email": "x"}, "'x'"),
        ({"Description": "my words", "ok": "kept"}, "my words"),
        ({"nested": [{"password": "pw"}]}, "'pw'"),
        (RuntimeError("for ada@example.org"), "ada@example.org"),
    ],
)
def test_redaction_takes_out_each_shape_and_key(value: Any, secret: str) -> None:
    assert secret not in repr(redact_value(value))
