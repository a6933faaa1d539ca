"""The browser pages on the API's app: `/console` for support, `/my` for customers, `/assets` for both."""

from __future__ import annotations

from fastapi import FastAPI

from starter.web import (
    console_actions,
    console_auth,
    console_complaint,
    console_queue,
    customer_actions,
    customer_page,
    pages,
)
from starter.web.settings import WebSettings

WEB_ROUTERS = (
    console_auth,
    customer_page,
    customer_actions,
    console_queue,
    console_complaint,
    console_actions,
)


def install_pages(app: FastAPI, settings: WebSettings | None = None) -> None:
    """Add the pages to `app`. They are not part of the API's OpenAPI document, and the API's gate lets
    them through: a page checks its session and its form's CSRF token itself (`starter.web.pages`)."""
    pages.install(app, settings)
    for module in WEB_ROUTERS:
        app.include_router(module.router)
