"""CSRF tokens for every form of the browser pages.

A form's token is an HMAC, under the API's secret, of what binds it to one browser: the session's id once
signed in, before that a random value in a short-lived cookie of the sign-in page (so a sign-in form cannot
be posted from elsewhere either). Another site can neither read the token nor make one; and the session
cookies are SameSite=Strict besides, so a cross-site post arrives without them. A post whose token does
not match changes nothing and is answered 403.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

FIELD = "csrf_token"
"""The form field every form of the pages carries its token in."""
FORM_COOKIE = "rd_form"
"""The cookie binding a sign-in form to its browser before there is a session."""


class CsrfRefused(Exception):
    """A post without the right CSRF token."""


def csrf_token(secret: str, binding: str) -> str:
    digest = hmac.new(secret.encode(), b"csrf\x00" + binding.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def check_csrf(secret: str, binding: str | None, presented: object) -> None:
    """`CsrfRefused` unless `presented` is the token of `binding`."""
    if not binding or not isinstance(presented, str) or not presented:
        raise CsrfRefused
    if not hmac.compare_digest(csrf_token(secret, binding), presented):
        raise CsrfRefused


def new_binding() -> str:
    """A fresh value for the sign-in form's cookie."""
    return secrets.token_urlsafe(24)
