"""Slow clients, with real sockets on loopback: a request's headers and its body each have a deadline
(REFUND_DESK_HEADER_TIMEOUT, REFUND_DESK_BODY_TIMEOUT), so a client cannot hold a connection by sending a
header line every few seconds or a body that never comes. A client that misses one is answered 408
`request_timeout` in the contract's error body and its connection is closed.

The API is served as `refund-desk serve` serves it (`starter.api.server`), through the tests' `serving`
with short deadlines, and once as the `refund-desk serve` process itself.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from temporalio.testing import WorkflowEnvironment

from ledger.vault import VaultKeyring
from policy.models import Role
from starter.api.auth import mint_token
from starter.desk import ComplaintDesk
from tests.conftest import JWT_SECRET, migrated_ledger, serving
from tests.factories import PAYLOAD_KEYS
from tests.test_api import new_customer, order_body
from tests.test_gate import head, read_response
from tests.test_hostile_input import settled, snapshot

ROOT = Path(__file__).resolve().parent.parent
SECOND = timedelta(seconds=1)


async def closed_after(
    base_url: str, first: bytes, dribble: bytes = b"", every: float = 0.25, give_up: float = 20
) -> tuple[float, bytes]:
    """Connect, send `first`, then `dribble` every `every` s until the server closes the connection (or
    `give_up` s pass); the seconds it stayed open and everything the server sent."""
    address = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    began = time.monotonic()

    async def trickle() -> None:
        writer.write(first)
        while dribble:
            await asyncio.sleep(every)
            if writer.is_closing():
                return
            writer.write(dribble)
            try:
                await writer.drain()
            except ConnectionError:
                return

    sender = asyncio.create_task(trickle())
    received = b""
    try:
        async with asyncio.timeout(give_up):
            while chunk := await reader.read(65536):
                received += chunk
    except TimeoutError:
        pass
    except ConnectionError:
        pass
    finally:
        sender.cancel()
        writer.close()
    return time.monotonic() - began, received


def timed_out(received: bytes) -> dict[str, object]:
    """The 408 the server sent before closing: its status line and error body."""
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 408"), received[:200]
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"connection: close" in headers.lower(), headers
    error: dict[str, object] = json.loads(body)["error"]
    assert error["code"] == "request_timeout", error
    return error


async def test_headers_sent_a_line_a_quarter_second_are_cut_off_at_the_header_timeout(
    desk: ComplaintDesk,
) -> None:
    """uvicorn's keep-alive timeout does not cover a request whose headers are still coming: 300 such
    connections used to stay open indefinitely. Now the headers have a second here (10 s by default)."""
    async with serving(desk, header_timeout=SECOND) as api:
        first = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        stayed, received = await closed_after(api.base_url, first, b"X-Padding: more\r\n")
        assert 0.9 < stayed < 15, stayed  # the 408 itself proves the cut; a busy machine may be late
        assert "headers" in str(timed_out(received)["message"])


async def test_a_connection_that_sends_nothing_and_a_keep_alive_one_whose_next_headers_stall_are_closed(
    desk: ComplaintDesk,
) -> None:
    async with serving(desk, header_timeout=SECOND) as api:
        stayed, received = await closed_after(api.base_url, b"")
        assert 0.9 < stayed < 15, stayed  # the 408 itself proves the cut; a busy machine may be late
        timed_out(received)

        address = urlsplit(api.base_url)
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        writer.write(head("GET", "/healthz", {}))
        status, _, _ = await read_response(reader)
        assert status == 200
        began = time.monotonic()
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        async with asyncio.timeout(20):
            rest = await reader.read()  # until the server closes
        assert 0.9 < time.monotonic() - began < 15
        timed_out(rest)
        writer.close()


async def test_a_body_that_stalls_is_408_within_the_body_timeout_and_writes_nothing(
    desk: ComplaintDesk,
) -> None:
    """A body announced and never sent used to hold its connection forever; now the whole body has the
    body timeout (a second here, 30 s by default) to arrive once the headers have."""
    async with serving(desk, body_timeout=SECOND) as api:
        before = await settled(api.desk.ledger)
        headers = {
            "Authorization": f"Bearer {api.token(Role.BACKEND, 'shop')}",
            "Content-Type": "application/json",
            "Content-Length": "500",
        }
        first = head("POST", "/v1/orders", headers) + b'{"order_id": "ord-'
        stayed, received = await closed_after(api.base_url, first)
        assert 0.9 < stayed < 15, stayed  # the 408 itself proves the cut; a busy machine may be late
        assert "body" in str(timed_out(received)["message"])
        assert await snapshot(api.desk.ledger) == before


async def test_a_slow_body_within_both_timeouts_is_applied(desk: ComplaintDesk) -> None:
    """The header deadline ends with the headers: a body sent in pieces over three seconds, with a second
    for headers and ten for the body, is read and the order recorded."""
    async with serving(desk, header_timeout=SECOND, body_timeout=10 * SECOND) as api:
        body = json.dumps(order_body(new_customer())).encode()

        async def pieces() -> AsyncIterator[bytes]:
            for start in range(0, len(body), len(body) // 3 + 1):
                await asyncio.sleep(1.0)
                yield body[start : start + len(body) // 3 + 1]

        response = await api.backend().post(
            "/v1/orders", content=pieces(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 201, response.text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def refund_desk_serve(environment: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "starter.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


async def test_refund_desk_serve_applies_both_timeouts_from_the_environment(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """`refund-desk serve` reads REFUND_DESK_HEADER_TIMEOUT and REFUND_DESK_BODY_TIMEOUT and serves with
    them: the deployed process, not only the tests' server."""
    url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    await (await migrated_ledger(url)).close()
    environment = {
        "PATH": str(Path(sys.executable).parent),
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "DATABASE_URL": url,
        "REFUND_DESK_DATA_DIR": str(tmp_path),
        "REFUND_DESK_VAULT_KEYS": VaultKeyring.generate().spec(),
        "REFUND_DESK_PAYLOAD_KEYS": PAYLOAD_KEYS.spec(),
        "REFUND_DESK_JWT_SECRET": JWT_SECRET,
        "REFUND_DESK_HEADER_TIMEOUT": "1",
        "REFUND_DESK_BODY_TIMEOUT": "PT1S",
    }
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "api.log"
    with refund_desk_serve(environment, port, log) as process:
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
            for _ in range(300):
                assert process.poll() is None, log.read_text()
                try:
                    await http.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        stayed, received = await closed_after(base_url, b"GET /healthz HTTP/1.1\r\n", b"X-Padding: more\r\n")
        assert 0.9 < stayed < 15, (stayed, log.read_text())
        timed_out(received)
        token = mint_token(JWT_SECRET, Role.BACKEND, "shop")
        announced = {"Authorization": f"Bearer {token}", "Content-Length": "100"}
        stayed, received = await closed_after(base_url, head("POST", "/v1/orders", announced) + b"{")
        assert 0.9 < stayed < 15, (stayed, log.read_text())
        timed_out(received)
