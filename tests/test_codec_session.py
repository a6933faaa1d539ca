"""The console's codec pass: signing in to the console lets the Temporal web UI decode payloads through
`/codec` with the browser's cookie (`starter.web.sessions.codec_pass`, `starter.api.cors`), and nothing else
does. Over real HTTP on the real API, and in Chromium from a page on a second loopback origin, as the UI's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from ledger.schema import SpentTokenRow
from ledger.spent_tokens import SpentTokens
from policy.models import Role
from starter.api.auth import ALGORITHM, Principal, TokenRules
from starter.desk import ComplaintDesk
from starter.desk.codec import EncryptionCodec, encrypting_converter
from starter.local.run import dev_server_command
from starter.web.sessions import CODEC_COOKIE, SessionTokens, WebSession
from tests.browser import NewContext, console_link, screenshot, sign_in_with_token
from tests.browser import chromium as chromium
from tests.browser import contexts as contexts
from tests.conftest import JWT_SECRET, Api, served, serving
from tests.factories import PAYLOAD_KEYS
from tests.test_console_pages import SIGN_IN, csrf_of, page_and_csrf, signed_in

UI = "http://127.0.0.1:8233"
"""One of the API's default REFUND_DESK_CODEC_CORS_ORIGINS: the web UI's origin in compose."""
SECRET_TEXT = "Quetzal-marmot: the licence server rejects keys issued after the 3rd."
RULES = TokenRules(secret=JWT_SECRET)
ALICE = Principal(sub="alice", role=Role.SUPPORT)
HOUR = timedelta(hours=1)


async def sealed_body(text: str = SECRET_TEXT) -> dict[str, Any]:
    """A `/codec/decode` body holding one payload sealed with the test keys, as a history holds it."""
    [sealed] = await EncryptionCodec(PAYLOAD_KEYS).encode(
        [Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())]
    )
    metadata = {k: base64.b64encode(v).decode() for k, v in sealed.metadata.items()}
    return {"payloads": [{"metadata": metadata, "data": base64.b64encode(sealed.data).decode()}]}


def decoded_text(answer: httpx.Response) -> str:
    return "\n".join(base64.b64decode(p["data"]).decode() for p in answer.json()["payloads"])


def with_pass(api: Api, value: str) -> httpx.AsyncClient:
    """A client carrying `value` as the codec pass's cookie, as a browser sends it to /codec."""
    client = api.client({"Origin": UI})
    client.cookies.set(CODEC_COOKIE, value, path="/codec")
    return client


def set_cookie_of(answer: httpx.Response, name: str) -> str:
    [line] = [v for v in answer.headers.get_list("set-cookie") if v.startswith(f"{name}=")]
    return line


def sessions_of(api: Api) -> SessionTokens:
    return SessionTokens(rules=RULES, spent=SpentTokens(api.desk.ledger.engine))


# ------------------------------------------------------------------------------------- the pass itself


async def test_console_sign_in_sets_the_codec_pass_scoped_to_the_codec(api: Api) -> None:
    browser = api.client()
    form = await browser.get(SIGN_IN)
    token = api.token(Role.SUPPORT, "alice")
    answer = await browser.post(SIGN_IN, data={"csrf_token": csrf_of(form.text), "token": token})
    assert answer.status_code == 303
    codec = set_cookie_of(answer, CODEC_COOKIE).lower()
    console = set_cookie_of(answer, "rd_console_session").lower()
    for attribute in ("httponly", "samesite=strict", "max-age="):
        assert attribute in codec and attribute in console
    assert "path=/codec" in codec and "path=/console" in console
    assert "secure" not in codec, "Secure over HTTPS only: this is plain loopback HTTP"
    assert browser.cookies[CODEC_COOKIE] != browser.cookies["rd_console_session"]

    # Each cookie opens its own place only.
    swapped = api.client({"Origin": UI})
    swapped.cookies.set("rd_console_session", browser.cookies[CODEC_COOKIE], path="/console")
    queue = await swapped.get("/console")
    assert queue.status_code == 303 and queue.headers["location"] == SIGN_IN
    console_as_pass = await with_pass(api, browser.cookies["rd_console_session"]).post(
        "/codec/decode", json=await sealed_body()
    )
    assert console_as_pass.status_code == 401 and SECRET_TEXT not in console_as_pass.text


async def test_a_sign_in_link_sets_the_pass_too(api: Api) -> None:
    browser = api.client()
    link = console_link(api, "bob").removeprefix(api.base_url)
    form = await browser.get(link)
    [_, token] = link.split("?link=")
    answer = await browser.post(SIGN_IN, data={"csrf_token": csrf_of(form.text), "link": token})
    assert answer.status_code == 303, answer.text
    decoded = await browser.post("/codec/decode", json=await sealed_body(), headers={"Origin": UI})
    assert decoded.status_code == 200 and SECRET_TEXT in decoded_text(decoded)


async def test_the_pass_alone_decodes_for_the_ui_origin_with_credentials(api: Api) -> None:
    browser = await signed_in(api)
    answer = await browser.post("/codec/decode", json=await sealed_body(), headers={"Origin": UI})
    assert answer.status_code == 200, answer.text
    assert SECRET_TEXT in decoded_text(answer)
    assert answer.request.headers.get("authorization") is None, "no token: the cookie alone"
    assert "rd_console_session" not in answer.request.headers["cookie"], "the console's stays at /console"
    assert answer.headers["access-control-allow-origin"] == UI
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert "origin" in answer.headers["vary"].lower()


async def test_without_a_live_support_pass_the_codec_is_401(api: Api) -> None:
    body = await sealed_body()
    sessions = sessions_of(api)
    now = datetime.now(UTC)
    _, session = sessions.open_session(ALICE, HOUR, now=now)
    customer_session, _ = sessions.open_session(Principal(sub="cust-1", role=Role.CUSTOMER), HOUR, now=now)
    _, old = sessions.open_session(ALICE, HOUR, now=now - 2 * HOUR)
    claims = {
        "sub": "cust-1",
        "role": "customer",
        "iat": now,
        "exp": now + HOUR,
        "iss": RULES.issuer,
        "aud": sessions.codec_audience,
        "sid": "s-1",
    }
    refused = {
        "no pass": api.client({"Origin": UI}),
        "a customer's session": with_pass(api, customer_session),
        "a customer's pass": with_pass(api, jwt.encode(claims, JWT_SECRET, algorithm=ALGORITHM)),
        "a support token": with_pass(api, api.token(Role.SUPPORT, "alice")),
        "forged": with_pass(api, forged(session)),
        "expired": with_pass(api, sessions.codec_pass(old, now=now - 2 * HOUR)),
        "garbage": with_pass(api, "not-a-jwt"),
    }
    for what, client in refused.items():
        answer = await client.post("/codec/decode", json=body)
        assert answer.status_code == 401, (what, answer.text)
        assert answer.json()["error"]["code"] == "unauthorized", what
        assert SECRET_TEXT not in answer.text, what
        assert answer.headers["access-control-allow-origin"] == UI, "the UI may read why"
    with pytest.raises(ValueError, match="only support"):
        sessions.codec_pass(
            sessions.open_session(Principal(sub="cust-1", role=Role.CUSTOMER), HOUR, now=now)[1], now=now
        )


def forged(session: WebSession) -> str:
    """A codec pass for `session` signed with a secret that is not the API's."""
    other = SessionTokens(rules=TokenRules(secret="another-" + "y" * 40), spent=SpentTokens(None))  # type: ignore[arg-type]
    return other.codec_pass(session, now=datetime.now(UTC))


async def test_signing_out_clears_the_pass_and_spends_it(api: Api) -> None:
    browser = await signed_in(api)
    kept = browser.cookies[CODEC_COOKIE]
    _, token = await page_and_csrf(browser, "/console")
    signed_out = await browser.post("/console/sign-out", data={"csrf_token": token})
    assert signed_out.status_code == 303
    cleared = set_cookie_of(signed_out, CODEC_COOKIE).lower()
    assert 'rd_codec_session=""' in cleared or "rd_codec_session=;" in cleared
    assert "max-age=0" in cleared and "path=/codec" in cleared
    assert CODEC_COOKIE not in browser.cookies

    sid = jwt.decode(kept, options={"verify_signature": False})["sid"]
    async with api.desk.ledger.engine.connect() as db:
        spent = (await db.execute(select(SpentTokenRow.token_id).where(SpentTokenRow.token_id == sid))).all()
    assert len(spent) == 1, "the sign-out spent the session's id, which the pass shares"
    again = await with_pass(api, kept).post("/codec/decode", json=await sealed_body())
    assert again.status_code == 401 and SECRET_TEXT not in again.text


async def test_revoking_every_token_ends_the_pass(desk: ComplaintDesk) -> None:
    issued = datetime.now(UTC) - timedelta(minutes=5)
    async with serving(desk, tokens_not_before=issued + timedelta(minutes=1)) as api:
        sessions = sessions_of(api)
        _, session = sessions.open_session(ALICE, HOUR, now=issued)
        answer = await with_pass(api, sessions.codec_pass(session, now=issued)).post(
            "/codec/decode", json=await sealed_body()
        )
        assert answer.status_code == 401, answer.text


async def test_the_pass_counts_from_the_allowed_origins_only(api: Api) -> None:
    """A page on another port of the same host is the same site, so a browser would send the pass from it
    too: the codec refuses it there (and CORS would keep the answer from the page anyway)."""
    browser = await signed_in(api)
    body = await sealed_body()
    for origin in ("http://127.0.0.1:9999", "null", None):
        headers = {} if origin is None else {"Origin": origin}
        answer = await browser.post("/codec/decode", json=body, headers=headers)
        assert answer.status_code == 403, (origin, answer.text)
        assert answer.json()["error"]["code"] == "forbidden"
        assert SECRET_TEXT not in answer.text
        assert "access-control-allow-origin" not in answer.headers
        assert "access-control-allow-credentials" not in answer.headers


async def test_a_bearer_token_is_judged_as_ever_and_counts_over_the_pass(api: Api) -> None:
    browser = await signed_in(api)
    body = await sealed_body()
    customer = await browser.post(
        "/codec/decode",
        json=body,
        headers={"Origin": UI, "Authorization": f"Bearer {api.token(Role.CUSTOMER, 'c')}"},
    )
    assert customer.status_code == 403 and SECRET_TEXT not in customer.text
    support = await api.support().post(
        "/codec/decode", json=body, headers={"Origin": "http://127.0.0.1:9999"}
    )
    assert support.status_code == 200, "the CLI's token needs no origin, and gets no CORS headers"
    assert "access-control-allow-origin" not in support.headers


# -------------------------------------------------------------------------------------------- CORS


async def test_the_preflight_lets_the_ui_send_credentials_and_nobody_else(api: Api) -> None:
    http = api.client()
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    allowed = await http.options("/codec/decode", headers={"Origin": UI, **asked})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == UI
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert allowed.headers["access-control-allow-methods"] == "POST"
    allowed_headers = {h.strip() for h in allowed.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-namespace"} <= allowed_headers
    assert "origin" in allowed.headers["vary"].lower()

    refused = [
        {"Origin": "http://127.0.0.1:9999", **asked},
        {"Origin": "http://evil.example", **asked},
        {"Origin": "null", **asked},
        {"Origin": UI, "Access-Control-Request-Method": "PUT"},
        {"Origin": UI, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-other"},
    ]
    for headers in refused:
        answer = await http.options("/codec/decode", headers=headers)
        assert answer.status_code == 403, headers
        assert "access-control-allow-methods" not in answer.headers, headers
        if headers["Origin"] != UI:
            assert "access-control-allow-origin" not in answer.headers, headers
            assert "access-control-allow-credentials" not in answer.headers, headers


async def test_a_wildcard_origin_setting_lets_no_one_in(desk: ComplaintDesk) -> None:
    async with serving(desk, codec_cors_origins=f"*,null,{UI}") as api:
        for origin in ("http://evil.example", "null"):
            answer = await api.client().options(
                "/codec/decode", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
            )
            assert answer.status_code == 403 and "access-control-allow-origin" not in answer.headers
        assert (await signed_in(api)).cookies[CODEC_COOKIE]


# ------------------------------------------------------------------------------------- in the browser

FETCH = """async ({url, body, credentials}) => {
  try {
    const answer = await fetch(url, {
      method: "POST", credentials,
      headers: {"Content-Type": "application/json", "X-Namespace": "default"},
      body: JSON.stringify(body),
    });
    return {status: answer.status, text: await answer.text()};
  } catch (error) {
    return {status: 0, text: String(error)};
  }
}"""
"""What the Temporal UI does with `TEMPORAL_CODEC_INCLUDE_CREDENTIALS=true` (its data-encoder service)."""


def ui_page_app() -> Starlette:
    """A page standing in for the web UI: served from an origin of its own, it calls the codec."""

    async def page(_: Request) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>Temporal UI stand-in</title><h1>UI</h1>")

    return Starlette(routes=[Route("/", page)])


@asynccontextmanager
async def ui_and_api(desk: ComplaintDesk) -> AsyncIterator[tuple[str, str, Api]]:
    """Two loopback origins serving the stand-in page (the UI's, let in; another, not) and the API."""
    async with (
        served(ui_page_app()) as ui,
        served(ui_page_app()) as other,
        serving(desk, codec_cors_origins=ui) as api,
    ):
        yield ui, other, api


async def call_codec(page: Page, api: Api, credentials: str = "include") -> dict[str, Any]:
    body = await sealed_body()
    found: dict[str, Any] = await page.evaluate(
        FETCH, {"url": f"{api.base_url}/codec/decode", "body": body, "credentials": credentials}
    )
    return found


async def test_a_page_on_the_uis_origin_decodes_with_the_consoles_cookie(
    desk: ComplaintDesk, contexts: NewContext
) -> None:
    """Support signs in to the console on the API's origin; a page on another port of the same host (the
    UI's origin, a different origin but the same site) calls `POST /codec/decode` with `credentials:
    "include"`: Chromium sends the SameSite=Strict pass, and the page reads the payload decoded. The same
    call from an origin not let in, or without credentials, or after signing out, reads nothing."""
    async with ui_and_api(desk) as (ui, other, api):
        context = await contexts()
        console = await context.new_page()
        await sign_in_with_token(console, api)
        cookies = {c["name"]: c for c in await context.cookies(api.base_url + "/codec/decode")}
        assert cookies[CODEC_COOKIE]["sameSite"] == "Strict" and cookies[CODEC_COOKIE]["httpOnly"]
        assert cookies[CODEC_COOKIE]["path"] == "/codec"

        page = await context.new_page()
        await page.goto(ui + "/")
        decoded = await call_codec(page, api)
        assert decoded["status"] == 200, decoded
        payload = decoded_payloads(decoded["text"])
        assert SECRET_TEXT in payload

        anonymous = await call_codec(page, api, credentials="omit")
        assert anonymous["status"] == 401 and SECRET_TEXT not in anonymous["text"]

        elsewhere = await context.new_page()
        await elsewhere.goto(other + "/")
        refused = await call_codec(elsewhere, api)
        assert refused["status"] == 0 and "Failed to fetch" in refused["text"], refused

        await console.get_by_role("button", name="Sign out").click()
        await console.wait_for_url("**/console/sign-in")
        assert CODEC_COOKIE not in {c["name"] for c in await context.cookies(api.base_url + "/codec/decode")}
        after = await call_codec(page, api)
        assert after["status"] == 401 and SECRET_TEXT not in after["text"], after


def decoded_payloads(text: str) -> str:
    return "\n".join(base64.b64decode(p["data"]).decode() for p in json.loads(text)["payloads"])


# --------------------------------------------------------------------- the dev server's own web UI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def connected(address: str) -> Client:
    """A client of the dev server at `address`, sealing with the test keys, once the server answers."""
    for _ in range(120):
        try:
            return await Client.connect(address, data_converter=encrypting_converter(PAYLOAD_KEYS))
        except RuntimeError:
            await asyncio.sleep(0.5)
    raise AssertionError(f"the dev server at {address} never answered")


async def test_the_dev_servers_web_ui_decodes_once_told_to_send_credentials(
    desk: ComplaintDesk, contexts: NewContext, tmp_path: Path
) -> None:
    """`make run`'s Temporal: the real web UI of `temporal server start-dev --ui-codec-endpoint` (the
    command `make run` builds). The dev server has no flag for the UI to include credentials, so as
    started it calls the codec without the cookie and shows the payload encrypted; with "Include
    cross-origin credentials" ticked in its Codec Server settings (kept in the browser's localStorage),
    it shows it decoded to support signed in to the console."""
    port, ui_port = free_port(), free_port()
    ui = f"http://127.0.0.1:{ui_port}"
    async with serving(desk, codec_cors_origins=ui) as api:
        codec = f"{api.base_url}/codec"
        command = dev_server_command("127.0.0.1", port, ui_port, tmp_path, codec_endpoint=codec)
        log = (tmp_path / "temporal.log").open("wb")
        process = await asyncio.create_subprocess_exec(*command, stdout=log, stderr=log)
        try:
            client = await connected(f"127.0.0.1:{port}")
            workflow_id = f"codec-ui-{uuid.uuid4().hex[:8]}"
            handle = await client.start_workflow(
                "NobodyRunsThis", SECRET_TEXT, id=workflow_id, task_queue="nobody-polls-this"
            )
            context = await contexts()
            await sign_in_with_token(await context.new_page(), api)
            page = await context.new_page()
            history = f"{ui}/namespaces/default/workflows/{workflow_id}/{handle.result_run_id}/history"
            async with page.expect_response(f"{codec}/decode*") as without:
                await page.goto(history)
            assert (await without.value).status == 401, "the UI as started sends no cookie"
            await expect(page.get_by_text(workflow_id).first).to_be_visible()
            await screenshot(page, "temporal-ui-codec-without-credentials")
            assert SECRET_TEXT not in await page.content()

            await page.evaluate(
                """(endpoint) => {
                  localStorage.setItem("endpoint", JSON.stringify(endpoint));
                  localStorage.setItem("includeCredentials", "true");
                  localStorage.setItem("overrideRemoteCodecConfiguration", "true");
                }""",
                codec,
            )
            async with page.expect_response(f"{codec}/decode*") as included:
                await page.goto(history)
            assert (await included.value).status == 200
            await expect(page.get_by_text(SECRET_TEXT).first).to_be_visible()
            await screenshot(page, "temporal-ui-codec-with-credentials")
        finally:
            process.terminate()
            await process.wait()
            log.close()
