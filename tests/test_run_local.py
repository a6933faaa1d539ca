"""`make run` (`python -m starter.local`) as a newcomer meets it: it refuses, in one line and before it
writes or starts anything, a port already taken or a setting it cannot use; once running it tells a second
shell what to export and which policy windows are in force, and its local SMTP sink saves the mail the
worker sends, which `refund-desk mail list` reads. Real processes and sockets, in a temporary folder, on
ephemeral ports (never the defaults: a developer's own `make run` may hold them)."""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from dispatch.mail_sink import Mail, list_mail
from ledger.paths import DATA_DIR_ENV
from ledger.vault import VaultKeyring
from policy.models import Role
from starter.api.auth import mint_token
from starter.cli.app import app
from starter.desk.settings import policy_in_force
from starter.local.banner import in_words, mail_line
from starter.local.preflight import Plan, bind_error, listeners, port_problems, read_plan
from starter.local.run import dispatch_environment, start_mail_sink
from tests.factories import DESCRIPTION
from tests.test_api import order_body

STARTED_WITHIN = 180
"""Seconds for the dev server, the worker and the API to answer on a busy two-core machine."""
MARKER = "REFUND_DESK_TEST_RUN"
"""An environment variable every process of one run inherits: how the test finds any left behind."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def listening() -> Iterator[int]:
    """A port another program holds: a socket listening on loopback for as long as the block runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def environment(folder: Path, ports: dict[str, int], **extra: str) -> dict[str, str]:
    """This interpreter's environment without the project's settings, then a data folder under `folder`,
    the ports (the mail sink's a free one unless `ports` names it), a marker naming this run and `extra`."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REFUND_DESK_", "TEMPORAL_")) and key != "DATABASE_URL"
    }
    return {
        **inherited,
        DATA_DIR_ENV: str(folder / ".data"),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['frontend']}",
        "TEMPORAL_UI_PORT": str(ports["ui"]),
        "REFUND_DESK_API_PORT": str(ports["api"]),
        "REFUND_DESK_MAIL_SINK_PORT": str(ports.get("mail") or free_port()),
        MARKER: uuid.uuid4().hex,
        **extra,
    }


def run_local(folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starter.local"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def processes_of(env: dict[str, str]) -> list[int]:
    """The live processes that inherited this run's marker (children left behind, if any)."""
    needle = f"{MARKER}={env[MARKER]}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def refused(folder: Path, env: dict[str, str]) -> str:
    """Run it, expecting a refusal: status 1, one line on stderr, nothing written and nothing left running."""
    done = run_local(folder, env)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert not (folder / ".data").exists()
    assert processes_of(env) == []
    return done.stderr.removeprefix("error: ").rstrip("\n")


@pytest.mark.parametrize(
    ("held", "message"),
    [
        ("frontend", "port {port} is taken (Temporal's frontend): set TEMPORAL_ADDRESS to another host:port"),
        ("ui", "port {port} is taken (the web UI's): set TEMPORAL_UI_PORT to another port"),
        ("api", "port {port} is taken (the API's): set REFUND_DESK_API_PORT to another port"),
        ("mail", "port {port} is taken (the mail sink's): set REFUND_DESK_MAIL_SINK_PORT to another port"),
    ],
)
def test_a_port_already_taken_stops_it_before_it_starts_anything(
    tmp_path: Path, held: str, message: str
) -> None:
    with listening() as port:
        ports = {
            "frontend": free_port(),
            "ui": free_port(),
            "api": free_port(),
            "mail": free_port(),
            held: port,
        }
        assert refused(tmp_path, environment(tmp_path, ports)) == message.format(port=port)


@pytest.mark.parametrize(
    ("setting", "value", "starts"),
    [
        ("REFUND_DESK_JWT_SECRET", "too-short", "the JWT secret in REFUND_DESK_JWT_SECRET is 9 bytes;"),
        ("TEMPORAL_ADDRESS", "localhost", "TEMPORAL_ADDRESS must be host:port"),
        ("TEMPORAL_UI_PORT", "eighty", "TEMPORAL_UI_PORT: Input should be a valid integer"),
        (
            "REFUND_DESK_API_PORT",
            "70000",
            "REFUND_DESK_API_PORT: Input should be less than or equal to 65535",
        ),
        ("REFUND_DESK_RECTIFY_WINDOW", "-5", "REFUND_DESK_RECTIFY_WINDOW: Input should be greater than"),
        (
            "REFUND_DESK_MAIL_SINK_PORT",
            "-1",
            "REFUND_DESK_MAIL_SINK_PORT: Input should be greater than or equal to 0",
        ),
        ("REFUND_DESK_SMTP_URL", "http://user:hunter2@mail", "REFUND_DESK_SMTP_URL must start with smtp://"),
        ("REFUND_DESK_SMTP_URL", "smtp://mail?tls=yes", "REFUND_DESK_SMTP_URL takes one option"),
    ],
)
def test_a_setting_it_cannot_use_is_one_line_and_nothing_starts(
    tmp_path: Path, setting: str, value: str, starts: str
) -> None:
    ports = {"frontend": free_port(), "ui": free_port(), "api": free_port()}
    message = refused(tmp_path, environment(tmp_path, ports, **{setting: value}))
    assert message.startswith(starts), message
    assert "Traceback" not in message
    assert "hunter2" not in message


def time_wait_port() -> int:
    """A loopback port whose only socket is in TIME_WAIT, as a server that closed its side first leaves it
    (an API or dev server just stopped)."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port: int = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            accepted, _ = server.accept()
            accepted.close()  # the server's side closes first: it is the one that waits
            assert client.recv(1) == b""
    return port


def test_a_port_in_time_wait_is_free_a_listening_one_is_not() -> None:
    port = time_wait_port()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # the socket in TIME_WAIT is there: a bind without SO_REUSEADDR fails
    assert bind_error("127.0.0.1", port) is None
    with listening() as held:
        taken = bind_error("127.0.0.1", held)
        assert taken is not None and taken.errno == errno.EADDRINUSE


def test_windows_in_words() -> None:
    assert in_words(timedelta(days=5)) == "5 days"
    assert in_words(timedelta(days=1)) == "1 day"
    assert in_words(timedelta(minutes=20)) == "20 min"
    assert in_words(timedelta(seconds=30)) == "30 s"
    assert in_words(timedelta(seconds=1.5)) == "1.5 s"
    assert in_words(timedelta(days=1, hours=12, seconds=4)) == "1 day 12 h 4 s"


def wait_for_banner(process: subprocess.Popen[str], out: Path) -> str:
    deadline = time.monotonic() + STARTED_WITHIN
    while time.monotonic() < deadline:
        text = out.read_text()
        if "Ctrl-C stops everything" in text:
            return text
        assert process.poll() is None, text
        time.sleep(0.2)
    raise AssertionError(f"no banner within {STARTED_WITHIN} s: {out.read_text()}")


def stop(process: subprocess.Popen[str], env: dict[str, str]) -> list[int]:
    """SIGTERM as Ctrl-C would; returns the processes of this run still alive after it, once killed."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    left = processes_of(env)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


def environ_of(pid: int) -> dict[str, str]:
    entries = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    return dict(entry.decode().partition("=")[::2] for entry in entries if b"=" in entry)


def worker_environment(env: dict[str, str]) -> dict[str, str]:
    """The environment `make run` gave its worker (`refund-desk worker`), read from /proc."""
    for pid in processes_of(env):
        arguments = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        if b"starter.cli" in arguments and b"worker" in arguments:
            return environ_of(pid)
    raise AssertionError("no worker runs")


def file_a_complaint(folder: Path, api_port: int) -> str:
    """An order and a defect complaint on it, through the running API as the shop's backend."""
    secret = (folder / ".data" / "jwt.secret").read_text().strip()
    headers = {"Authorization": f"Bearer {mint_token(secret, Role.BACKEND, 'shop')}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers=headers, timeout=30) as api:
        order = api.post("/v1/orders", json=order_body("cust-mail"))
        assert order.status_code == 201, order.text
        body = {"order_id": order.json()["order_id"], "kind": "major_defect", "description": DESCRIPTION}
        complaint = api.post("/v1/complaints", json=body)
        assert complaint.status_code == 201, complaint.text
        complaint_id: str = complaint.json()["complaint_id"]
        return complaint_id


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def signs_in_to_the_console(banner: str, api_port: int) -> str:
    """Follow the banner's console link as a browser would: open it, press its button, see the queue.
    Returns what using the same link again shows."""
    found = re.search(r"^  Console    (\S+)$", banner, re.MULTILINE)
    assert found is not None, banner
    link = found.group(1)
    assert link.startswith(f"http://127.0.0.1:{api_port}/console/sign-in?link="), link
    with httpx.Client(timeout=30) as browser:
        page = browser.get(link)
        csrf = CSRF.search(page.text)
        assert page.status_code == 200 and csrf is not None, page.text
        form = {"csrf_token": csrf.group(1), "link": link.split("?link=", 1)[1]}
        signed = browser.post(link.split("?", 1)[0], data=form)
        assert signed.status_code == 303 and signed.headers["location"] == "/console", signed.text
        queue = browser.get(f"http://127.0.0.1:{api_port}/console")
        assert queue.status_code == 200 and "Signed in as alice" in queue.text, queue.text
    with httpx.Client(timeout=30) as another:
        page = another.get(link)
        csrf = CSRF.search(page.text)
        assert csrf is not None
        again = another.post(link.split("?", 1)[0], data={**form, "csrf_token": csrf.group(1)})
        assert again.status_code == 401, again.text
        return again.text


def scraped(banner: str) -> tuple[str, str]:
    """What the two metrics URLs the banner prints answer: the API's, then the worker's."""
    found = re.search(r"^  Metrics    (\S+) .*\n {13}(\S+) ", banner, re.MULTILINE)
    assert found is not None, banner
    answers = [httpx.get(url, timeout=30) for url in found.groups()]
    assert [answer.status_code for answer in answers] == [200, 200], answers
    return answers[0].text, answers[1].text


def mail_arrives(folder: Path, containing: str, seconds: float = 60) -> Mail:
    """The first message in the sink's folder whose subject holds `containing`, once it is there."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for mail in list_mail(folder):
            if containing in mail.subject:
                return mail
        time.sleep(0.2)
    raise AssertionError(f"no email about {containing} within {seconds:.0f} s")


def test_running_it_tells_a_second_shell_what_to_export_and_a_second_run_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = {"frontend": free_port(), "ui": free_port(), "api": free_port(), "mail": free_port()}
    keys = VaultKeyring.generate().spec()
    ledger_url = f"sqlite+aiosqlite:///{tmp_path / 'elsewhere' / 'ledger.db'}"
    env = environment(
        tmp_path,
        ports,
        REFUND_DESK_RECTIFY_WINDOW="30",
        DATABASE_URL=ledger_url,
        REFUND_DESK_VAULT_KEYS=keys,
    )
    out = tmp_path / "run.out"
    with out.open("w") as sink:
        first = subprocess.Popen(
            [sys.executable, "-m", "starter.local"],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        banner = wait_for_banner(first, out)
        second = run_local(tmp_path, {**env, MARKER: uuid.uuid4().hex})
        assert second.returncode == 1
        assert second.stderr == (
            f"error: port {ports['frontend']} is taken (Temporal's frontend): set TEMPORAL_ADDRESS to "
            f"another host:port; port {ports['ui']} is taken (the web UI's): set TEMPORAL_UI_PORT to "
            f"another port; port {ports['api']} is taken (the API's): set REFUND_DESK_API_PORT to another "
            f"port; port {ports['mail']} is taken (the mail sink's): set REFUND_DESK_MAIL_SINK_PORT to "
            "another port; is `make run` running already?\n"
        )
        worker = worker_environment(env)
        complaint_id = file_a_complaint(tmp_path, ports["api"])
        filed = mail_arrives(tmp_path / ".data" / "mail", complaint_id)
        used_again = signs_in_to_the_console(banner, ports["api"])
        api_metrics, worker_metrics = scraped(banner)
    finally:
        left = stop(first, env)
    assert first.returncode == 0, out.read_text()
    assert left == [], "every child stopped with it"
    assert bind_error("127.0.0.1", ports["mail"]) is None, "the sink stopped with it"

    assert worker["REFUND_DESK_SMTP_URL"] == f"smtp://127.0.0.1:{ports['mail']}"
    assert worker["REFUND_DESK_PUBLIC_URL"] == f"http://127.0.0.1:{ports['api']}"
    assert worker["REFUND_DESK_JWT_SECRET"] == (tmp_path / ".data" / "jwt.secret").read_text().strip()
    sink_line = f"saved in .data/mail/ (SMTP sink on 127.0.0.1:{ports['mail']})"
    assert f"  Mail       {sink_line}; read: .venv/bin/refund-desk mail list\n" in banner
    assert filed.recipient == "support@localhost" and complaint_id in filed.text
    assert "used already" in used_again, "the banner's console link signs in once"
    assert "refund_desk_complaints_open{" in api_metrics and "temporal_worker_task_slots" in worker_metrics
    assert f"http://{worker['REFUND_DESK_WORKER_METRICS_ADDRESS']}/metrics" in banner
    listed = CliRunner().invoke(app, ["mail", "list"], env={DATA_DIR_ENV: str(tmp_path / ".data")})
    assert listed.exit_code == 0 and complaint_id in listed.stdout, listed.output

    assert f"  export TEMPORAL_ADDRESS=127.0.0.1:{ports['frontend']}\n" in banner
    assert f"  export {DATA_DIR_ENV}={tmp_path / '.data'}\n" in banner
    assert f"  export DATABASE_URL={ledger_url}\n" in banner
    assert "  and REFUND_DESK_VAULT_KEYS as in this shell (not printed here)\n" in banner
    assert keys not in banner
    assert "  rectify window          30 s\n" in banner
    assert "  remedy choice window    3 days\n" in banner
    assert "  review reminder         1 day before the review deadline\n" in banner

    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / ".data"))
    monkeypatch.delenv("REFUND_DESK_RECTIFY_WINDOW", raising=False)
    assert policy_in_force().rectify_window == timedelta(seconds=30), "a CLI elsewhere gets the run's policy"
    assert (tmp_path / "elsewhere" / "ledger.db").is_file()


def test_a_ledger_that_does_not_answer_stops_it_in_one_line_before_any_server(tmp_path: Path) -> None:
    ports = {"frontend": free_port(), "ui": free_port(), "api": free_port()}
    nowhere = f"postgresql+asyncpg://ledger:hunter2@127.0.0.1:{free_port()}/refunds"
    env = environment(tmp_path, ports, DATABASE_URL=nowhere)
    done = run_local(tmp_path, env)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: ledger_unavailable: the ledger is unavailable"), done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    assert processes_of(env) == []


def plan_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **settings: str) -> Plan:
    """`make run`'s plan as `read_plan` reads it from an environment of `environment`'s and `settings`."""
    ports = {"frontend": free_port(), "ui": free_port(), "api": free_port()}
    for name in [*os.environ]:
        if name.startswith(("REFUND_DESK_", "TEMPORAL_")) or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    for name, value in {**environment(tmp_path, ports), **settings}.items():
        monkeypatch.setenv(name, value)
    return read_plan()


def test_with_an_smtp_server_configured_no_sink_starts_and_its_port_is_not_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with listening() as held:
        url = "smtp://relay:secret@mail.example:2525?starttls=true"
        plan = plan_for(tmp_path, monkeypatch, REFUND_DESK_SMTP_URL=url, REFUND_DESK_MAIL_SINK_PORT=str(held))
        assert port_problems(plan) == []
        assert start_mail_sink(plan) is None
        assert dispatch_environment(plan, None) == {
            "REFUND_DESK_PUBLIC_URL": f"http://127.0.0.1:{plan.ports.api_port}"
        }
        assert "secret" not in mail_line(plan, None)


def test_sink_port_0_takes_a_free_port_and_the_worker_is_told_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = plan_for(
        tmp_path, monkeypatch, REFUND_DESK_MAIL_SINK_PORT="0", REFUND_DESK_PUBLIC_URL="https://desk.example"
    )
    assert all(listener.setting != "REFUND_DESK_MAIL_SINK_PORT" for listener in listeners(plan))
    sink = start_mail_sink(plan)
    assert sink is not None
    try:
        assert sink.port != 0 and bind_error("127.0.0.1", sink.port) is not None
        assert sink.folder == tmp_path / ".data" / "mail"
        assert dispatch_environment(plan, sink) == {
            "REFUND_DESK_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
            "REFUND_DESK_PUBLIC_URL": "https://desk.example",
        }
    finally:
        sink.stop()
    assert bind_error("127.0.0.1", sink.port) is None
