"""The local SMTP sink `make run` starts (`dispatch.mail_sink`) and the commands that read it
(`refund-desk mail list|show`, `starter.cli.mail`): real SMTP over loopback into a temporary folder, each
message a file only its owner may read, listed in arrival order and shown as its plain text. (`make run`
starting and stopping it is in `tests/test_run_local.py`.)"""

from __future__ import annotations

import smtplib
import stat
from email.message import EmailMessage
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatch.email import RenderedEmail, build_message
from dispatch.mail_sink import FILE_NAME, MailSink, list_mail, mail_folder, read_mail
from ledger.paths import DATA_DIR_ENV
from starter.cli.app import app
from tests.test_cli import QUIET_CONSOLE, failed, succeeded

runner = CliRunner()


def message(number: int, to: str = "cust@example.com") -> EmailMessage:
    rendered = RenderedEmail(
        subject=f"Refund {number} issued",
        text=f"We refunded order {number}.\nNothing more is needed from you.\n",
        html=f"<p>We refunded order <b>{number}</b>.</p>",
    )
    return build_message(rendered, to=to, sender="Refund Desk <desk@example.com>", message_id=f"m-{number}")


def deliver(port: int, *messages: EmailMessage) -> None:
    """Over SMTP to the sink, one connection each, as the dispatcher's sends are."""
    for each in messages:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(each)


def test_each_message_is_a_file_only_its_owner_reads_named_by_its_arrival(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    with MailSink(0, folder) as sink:
        assert sink.port != 0 and sink.url == f"smtp://127.0.0.1:{sink.port}"
        deliver(sink.port, message(1), message(2, to="other@example.com"), message(3))
    files = sorted(folder.iterdir())
    assert len(files) == 3, files
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in files:
        assert FILE_NAME.fullmatch(path.name), path.name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    found = list_mail(folder)
    assert [mail.path for mail in found] == files, "names sort in arrival order"
    assert [mail.subject for mail in found] == ["Refund 1 issued", "Refund 2 issued", "Refund 3 issued"]
    assert [mail.recipient for mail in found] == ["cust@example.com", "other@example.com", "cust@example.com"]
    assert found[0].received_at <= found[1].received_at <= found[2].received_at
    assert found[1].message["Message-ID"] == "<m-2@refund-desk>"
    assert read_mail(folder, 2).text == "We refunded order 2.\nNothing more is needed from you.\n"
    assert read_mail(folder, -1).path == files[-1]
    with pytest.raises(IndexError, match="there is no message 4: the folder holds 3"):
        read_mail(folder, 4)


def test_the_sink_is_stopped_cleanly_and_its_folder_holds_only_messages(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    sink = MailSink(0, folder).start()
    deliver(sink.port, message(1))
    sink.stop()
    with pytest.raises(OSError):
        deliver(sink.port, message(2))
    (folder / "notes.txt").write_text("not a message")
    (folder / ".20261130T183000000000Z-000009-abcdef.eml.part").write_bytes(b"half a message")
    assert [mail.subject for mail in list_mail(folder)] == ["Refund 1 issued"]


def test_the_default_folder_is_the_data_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    assert mail_folder() == tmp_path / "data" / "mail"
    assert MailSink(0).folder == tmp_path / "data" / "mail"
    assert list_mail() == []


def test_mail_list_and_show_read_the_files_with_no_server_running(tmp_path: Path) -> None:
    with MailSink(0, tmp_path / "mail") as sink:
        deliver(sink.port, message(1), message(2, to="other@example.com"))
    env = {**QUIET_CONSOLE, DATA_DIR_ENV: str(tmp_path)}
    listed = succeeded(runner.invoke(app, ["mail", "list"], env=env))
    lines = [line.split() for line in listed.splitlines()]
    assert lines[0] == ["#", "received", "(UTC)", "to", "subject"]
    when = [mail.received_at.strftime("%Y-%m-%d %H:%M:%S") for mail in list_mail(tmp_path / "mail")]
    assert lines[1] == ["1", *when[0].split(), "cust@example.com", "Refund", "1", "issued"]
    assert lines[2] == ["2", *when[1].split(), "other@example.com", "Refund", "2", "issued"]

    shown = succeeded(runner.invoke(app, ["mail", "show", "2"], env=env))
    assert "To:       other@example.com\n" in shown
    assert "Subject:  Refund 2 issued\n" in shown
    assert shown.endswith("\nWe refunded order 2.\nNothing more is needed from you.\n")
    assert "<p>" not in shown, "the text part, not the HTML"

    missing = runner.invoke(app, ["mail", "show", "3"], env=env)
    failed(missing, 1, "there is no message 3: the folder holds 2")


def test_mail_list_says_so_when_there_is_nothing_and_refuses_a_folder_that_is_not_one(tmp_path: Path) -> None:
    env = {**QUIET_CONSOLE, DATA_DIR_ENV: str(tmp_path)}
    empty = succeeded(runner.invoke(app, ["mail", "list"], env=env))
    assert empty == f"no messages in {tmp_path / 'mail'}\n"
    elsewhere = runner.invoke(app, ["mail", "list", "--folder", str(tmp_path / "nowhere")], env=env)
    failed(elsewhere, 2, f"{tmp_path / 'nowhere'} is not a folder")
