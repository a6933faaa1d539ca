"""What every browser page shares: the templates, the headers a page goes out with, the session it is read
under, its forms' CSRF check, and the pages for the three things that end a request early (sign in first,
a form from elsewhere, nothing to show).

A route asks for a `Browser` (anyone, with the session if there is one) or a signed-in one
(`SupportBrowser`, `CustomerBrowser`), reads its form through `Browser.form` (which checks the CSRF token
before anything else is read), and answers with `Browser.render`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from ledger.spent_tokens import SpentTokens
from starter.api.auth import TokenRules
from starter.api.schemas.common import format_amount
from starter.desk import ComplaintDesk
from starter.web import words
from starter.web.csrf import FIELD, FORM_COOKIE, CsrfRefused, check_csrf, csrf_token, new_binding
from starter.web.sessions import Area, SessionTokens, WebSession
from starter.web.settings import WebSettings

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
ASSETS = "/assets"
"""Where the pages' stylesheet and script are served from: the app's own files, nothing from elsewhere."""

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
"""Every page: only the app's own scripts, styles and images, never framed, never cached (a page shows a
customer's data), and no referrer (a customer's link carries its token)."""

MAX_FORM_FIELDS = 20
MAX_FORM_PART = 16 * 1024
MAX_FORM_BYTES = 64 * 1024
"""The largest form body any page takes, refused from its Content-Length before a byte of it is read."""
"""The largest form field any page takes (credentials' notes are the longest, 2,000 characters)."""


def when(instant: datetime | None) -> Markup:
    """An instant as `<time>`: UTC, labelled, which the pages' script rewrites in the reader's own zone."""
    if instant is None:
        return Markup("")
    utc = instant.astimezone(UTC)
    label = utc.strftime("%Y-%m-%d %H:%M UTC")
    return Markup(f'<time datetime="{escape(utc.isoformat())}">{escape(label)}</time>')


def path_part(text: str) -> str:
    """An id as one segment of a URL's path: every character but the unreserved ones escaped (Jinja's
    `urlencode` keeps `/`)."""
    return quote(text, safe="")


TEMPLATES.env.filters.update(when=when, path_part=path_part, amount=format_amount)
"""`amount`: money as the API writes it, "12.50", never "12.5" or "1.25E+1"."""
TEMPLATES.env.globals.update(
    assets=ASSETS,
    reason=words.reason,
    csrf_field=FIELD,
    kind_words=words.KIND_WORDS,
    product_words=words.PRODUCT_WORDS,
    event_words=words.event_words,
)


class SignInNeeded(Exception):
    def __init__(self, area: Area) -> None:
        self.area = area


class FormRefused(Exception):
    """A post whose body is not a form the pages take (too large, no length, unreadable): nothing is done."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why


class NothingToShow(Exception):
    """A complaint that is not there, not the reader's, or a link that has expired: one plain page for all,
    so that nobody learns which."""

    def __init__(self, area: Area) -> None:
        self.area = area


@dataclass
class Browser:
    """One request from a browser, in one area, with its session if it has one."""

    request: Request
    area: Area
    session: WebSession | None
    form_binding: str | None = None
    """The sign-in form's cookie value, made for this response when the browser had none."""
    cookies: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Cookies to set on the response: name to (value, max-age)."""

    @property
    def desk(self) -> ComplaintDesk:
        desk: ComplaintDesk = self.request.app.state.desk
        return desk

    @property
    def sessions(self) -> SessionTokens:
        return sessions_of(self.request)

    @property
    def settings(self) -> WebSettings:
        settings: WebSettings = self.request.app.state.web_settings
        return settings

    def binding(self) -> str:
        """What this browser's CSRF tokens are bound to: its session, else its sign-in form's cookie."""
        if self.session is not None:
            return self.session.sid
        if self.form_binding is None:
            self.form_binding = self.request.cookies.get(FORM_COOKIE) or new_binding()
            self.cookies[FORM_COOKIE] = (self.form_binding, 3600)
        return self.form_binding

    def csrf(self) -> str:
        return csrf_token(self.sessions.rules.secret, self.binding())

    async def form(self) -> Mapping[str, str]:
        """The posted form, once its CSRF token is this browser's (`CsrfRefused` otherwise); a body that is
        no form the pages take is `FormRefused`, its size judged before a byte of it is read."""
        declared = self.request.headers.get("content-length", "")
        if not declared.isdigit():
            raise FormRefused(411, "The form came without its length; send it again from the page.")
        if int(declared) > MAX_FORM_BYTES:
            raise FormRefused(
                413, f"The form is too large: a page takes {MAX_FORM_BYTES // 1024} KiB at most."
            )
        try:
            async with self.request.form(
                max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FORM_PART
            ) as f:
                fields = {key: value for key, value in f.items() if isinstance(value, str)}
        except HTTPException:  # Starlette's answer to a form it cannot parse within the limits
            raise FormRefused(400, "The form could not be read; send it again from the page.") from None
        binding = self.session.sid if self.session is not None else self.request.cookies.get(FORM_COOKIE)
        check_csrf(self.sessions.rules.secret, binding, fields.get(FIELD))
        return fields

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        context = {"session": self.session, "area": self.area.value, "csrf": self.csrf(), **context}
        response: HTMLResponse = TEMPLATES.TemplateResponse(
            self.request, template, context, status_code=status
        )
        self.finish(response)
        return response

    def redirect(self, url: str) -> RedirectResponse:
        response = RedirectResponse(url, status_code=303)
        self.finish(response)
        return response

    def finish(self, response: Response) -> None:
        """The pages' headers and this browser's pending cookies, on `response`."""
        response.headers.update(HEADERS)
        for name, (value, max_age) in self.cookies.items():
            set_cookie(response, name, value, max_age, self.area, secure=self.request.url.scheme == "https")

    def keep_session(self, value: str, session: WebSession, *, now: datetime) -> None:
        """Sign this browser in: the session's cookie goes out with the response."""
        self.session = session
        self.cookies[self.area.cookie] = (value, max(1, int((session.expires_at - now).total_seconds())))

    def drop_session(self) -> None:
        self.session = None
        self.cookies[self.area.cookie] = ("", 0)

    async def sign_out(self) -> RedirectResponse:
        """End the session for good (after the form's CSRF check) and go back to the area's sign-in."""
        await self.form()
        if self.session is not None:
            await self.sessions.end_session(self.session)
        self.drop_session()
        return self.redirect(f"{self.area.path}/sign-in")


def set_cookie(response: Response, name: str, value: str, max_age: int, area: Area, *, secure: bool) -> None:
    """HttpOnly, SameSite=Strict, scoped to the area's path; Secure where the page came over HTTPS."""
    response.set_cookie(
        name, value, max_age=max_age, path=area.path, httponly=True, samesite="strict", secure=secure
    )


def sessions_of(request: Request) -> SessionTokens:
    made: SessionTokens | None = getattr(request.app.state, "web_sessions", None)
    desk: ComplaintDesk = request.app.state.desk
    if made is None or made.spent.engine is not desk.ledger.engine:
        rules: TokenRules = request.app.state.tokens
        made = SessionTokens(rules=rules, spent=SpentTokens(desk.ledger.engine))
        request.app.state.web_sessions = made
    return made


async def _browser(request: Request, area: Area) -> Browser:
    cookie = request.cookies.get(area.cookie)
    session = None if not cookie else await sessions_of(request).read_session(cookie, area)
    return Browser(request=request, area=area, session=session)


async def console_browser(request: Request) -> Browser:
    return await _browser(request, Area.CONSOLE)


async def customer_browser(request: Request) -> Browser:
    return await _browser(request, Area.CUSTOMER)


async def signed_in_support(browser: Annotated[Browser, Depends(console_browser)]) -> Browser:
    if browser.session is None:
        raise SignInNeeded(Area.CONSOLE)
    return browser


async def signed_in_customer(browser: Annotated[Browser, Depends(customer_browser)]) -> Browser:
    if browser.session is None:
        raise NothingToShow(Area.CUSTOMER)
    return browser


ConsoleBrowser = Annotated[Browser, Depends(console_browser)]
SupportBrowser = Annotated[Browser, Depends(signed_in_support)]
CustomerPageBrowser = Annotated[Browser, Depends(customer_browser)]
CustomerBrowser = Annotated[Browser, Depends(signed_in_customer)]


def install(app: FastAPI, settings: WebSettings | None = None) -> None:
    """The pages' assets and the answers to the three early endings, on `app`."""
    app.state.web_settings = settings or WebSettings()
    app.mount(ASSETS, StaticFiles(directory=HERE / "static"), name="assets")

    @app.exception_handler(SignInNeeded)
    async def sign_in_first(request: Request, exc: SignInNeeded) -> Response:
        return Browser(request, exc.area, None).redirect(f"{exc.area.path}/sign-in")

    @app.exception_handler(CsrfRefused)
    async def forged(request: Request, _: CsrfRefused) -> Response:
        area = Area.CUSTOMER if request.url.path.startswith(Area.CUSTOMER.path) else Area.CONSOLE
        browser = await _browser(request, area)
        return browser.render("refused.html", status=403)

    @app.exception_handler(FormRefused)
    async def unreadable(request: Request, exc: FormRefused) -> Response:
        area = Area.CUSTOMER if request.url.path.startswith(Area.CUSTOMER.path) else Area.CONSOLE
        return Browser(request, area, None).render("refused.html", status=exc.status, why=exc.why)

    @app.exception_handler(NothingToShow)
    async def nothing(request: Request, exc: NothingToShow) -> Response:
        return Browser(request, exc.area, None).render("not_found.html", status=404)
