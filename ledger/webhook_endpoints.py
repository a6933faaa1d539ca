"""The shop's webhook endpoints: where events go, which types each wants, and the secrets that sign them.

A secret is in the Standard Webhooks format (`whsec_` and the base64 of 32 random bytes). It is shown to
the backend once, when it is made, and kept only sealed with the vault's keyring (AES-GCM, bound to the
endpoint's id, so a seal copied onto another endpoint does not open). Rotating makes a new secret and keeps
the one before signing too, until the overlap ends: a delivery then carries both signatures, and a receiver
still holding the old secret verifies it while it switches.

The dispatcher reads `get`, `subscribed` and `signing_secrets`; the API manages the rest. Nothing here
returns a secret except `create` and `rotate_secret`, which made it, and `signing_secrets`, for signing.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dispatch.events import ALL_TYPES, EVENT_TYPES, wanted
from ledger.keyring import KeyringError, b64, unb64
from ledger.schema import WebhookEndpointRow
from ledger.vault import VaultError, VaultKeyring
from policy import ids
from policy.complaint import SealedSecret
from policy.models import Frozen

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
"""Standard Webhooks asks for 24 to 64 random bytes."""

ENDPOINT_ID = re.compile(r"we_[0-9a-f]{32}")
"""An endpoint id as `policy.ids.webhook_endpoint_id` makes them. Any other text is no endpoint, found
without a query: a NUL or a lone surrogate in a path would otherwise reach the database driver."""

ROTATION_ATTEMPTS = 5
"""How often a rotation that met a concurrent one is tried again before it gives up."""


class WebhookEndpointNotFound(Exception):
    """No webhook endpoint has this id."""


class UnknownEventType(ValueError):
    """An event type that is neither one of `dispatch.events.EVENT_TYPES` nor `*`."""

    def __init__(self, event_type: str) -> None:
        super().__init__(f"no event type {event_type!r}")
        self.event_type = event_type


class WebhookEndpoint(Frozen):
    """An endpoint as the API shows it: never its secrets."""

    endpoint_id: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None = Field(
        default=None, description="Until when the secret before the last rotation still signs, if it does."
    )


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks format."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def event_types_of(requested: Iterable[str]) -> list[str]:
    """The subscription as stored: `["*"]` if it asks for every type, else the known types it names, once
    each, in `EVENT_TYPES` order. Raises `UnknownEventType` for any other, `ValueError` for none."""
    chosen = builtins.list(dict.fromkeys(requested))
    if not chosen:
        raise ValueError("an endpoint subscribes to at least one event type")
    for event_type in chosen:
        if event_type != ALL_TYPES and event_type not in EVENT_TYPES:
            raise UnknownEventType(event_type)
    if ALL_TYPES in chosen:
        return [ALL_TYPES]
    return [event_type for event_type in EVENT_TYPES if event_type in chosen]


class WebhookEndpoints:
    """The `webhook_endpoints` table, its secrets sealed with `keyring`."""

    def __init__(self, engine: AsyncEngine, keyring: VaultKeyring) -> None:
        self.engine = engine
        self.keyring = keyring

    # ---------------------------------------------------------------------------------------- managing

    async def create(
        self, url: str, event_types: Iterable[str], description: str = "", *, now: datetime | None = None
    ) -> tuple[WebhookEndpoint, str]:
        """A new endpoint, enabled, and its secret: the only time the secret is seen, so it is returned
        here and nowhere else."""
        now = now or _now()
        endpoint_id = ids.webhook_endpoint_id()
        secret = new_secret()
        values = {
            "endpoint_id": endpoint_id,
            "url": url,
            "event_types_json": json.dumps(event_types_of(event_types)),
            "description": description,
            "enabled": True,
            "secret_json": self._seal(secret, endpoint_id),
            "previous_secret_json": None,
            "previous_expires_at": None,
            "created_at": now,
            "updated_at": now,
        }
        async with self.engine.begin() as conn:
            await conn.execute(insert(WebhookEndpointRow).values(values))
        return _endpoint(values), secret

    async def list(self) -> builtins.list[WebhookEndpoint]:
        """Every endpoint, oldest first."""
        query = select(WebhookEndpointRow).order_by(
            WebhookEndpointRow.created_at, WebhookEndpointRow.endpoint_id
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_endpoint(row._mapping) for row in rows]

    async def get(self, endpoint_id: str) -> WebhookEndpoint | None:
        async with self.engine.connect() as conn:
            row = await _row(conn, endpoint_id)
        return None if row is None else _endpoint(row._mapping)

    async def url_of(self, endpoint_id: str) -> str | None:
        found = await self.get(endpoint_id)
        return None if found is None else found.url

    async def set_enabled(self, endpoint_id: str, enabled: bool) -> WebhookEndpoint:
        """A disabled endpoint keeps its subscription and secrets but is sent nothing."""
        return await self._update(endpoint_id, {"enabled": enabled})

    async def set_event_types(self, endpoint_id: str, event_types: Iterable[str]) -> WebhookEndpoint:
        """Events recorded from now on follow the new subscription; deliveries already made stay."""
        stored = json.dumps(event_types_of(event_types))
        return await self._update(endpoint_id, {"event_types_json": stored})

    async def delete(self, endpoint_id: str) -> None:
        """The endpoint and its secrets. Its deliveries stay in the ledger; a pending one is recorded
        undeliverable when the dispatcher next finds the endpoint gone."""
        if not ENDPOINT_ID.fullmatch(endpoint_id):
            raise WebhookEndpointNotFound(endpoint_id)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(WebhookEndpointRow).where(WebhookEndpointRow.endpoint_id == endpoint_id)
            )
        if result.rowcount != 1:
            raise WebhookEndpointNotFound(endpoint_id)

    async def _update(self, endpoint_id: str, values: dict[str, Any]) -> WebhookEndpoint:
        if not ENDPOINT_ID.fullmatch(endpoint_id):
            raise WebhookEndpointNotFound(endpoint_id)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(WebhookEndpointRow)
                .where(WebhookEndpointRow.endpoint_id == endpoint_id)
                .values(**values, updated_at=_now())
            )
            if result.rowcount != 1:
                raise WebhookEndpointNotFound(endpoint_id)
            row = await _row(conn, endpoint_id)
        assert row is not None
        return _endpoint(row._mapping)

    # ---------------------------------------------------------------------------------------- secrets

    async def rotate_secret(
        self, endpoint_id: str, overlap: timedelta, *, now: datetime | None = None
    ) -> str:
        """A new current secret, returned once. The current one becomes the previous and still signs until
        `now + overlap` (not at all for a zero overlap); a previous one from an earlier rotation is dropped,
        so rotate again only once the receiver holds the newest secret.

        The row is swapped only if its secret is still the one read (a compare-and-set), so two rotations
        at once each keep the secret the other made as their previous, on SQLite and PostgreSQL alike."""
        if overlap < timedelta(0):
            raise ValueError("the overlap of a rotation is zero or more")
        now = now or _now()
        secret = new_secret()
        for _ in range(ROTATION_ATTEMPTS):
            async with self.engine.begin() as conn:
                row = await _row(conn, endpoint_id)
                if row is None:
                    raise WebhookEndpointNotFound(endpoint_id)
                keep = overlap > timedelta(0)
                result = await conn.execute(
                    update(WebhookEndpointRow)
                    .where(
                        WebhookEndpointRow.endpoint_id == endpoint_id,
                        WebhookEndpointRow.secret_json == row.secret_json,
                    )
                    .values(
                        secret_json=self._seal(secret, endpoint_id),
                        previous_secret_json=row.secret_json if keep else None,
                        previous_expires_at=now + overlap if keep else None,
                        updated_at=now,
                    )
                )
            if result.rowcount == 1:
                return secret
        raise RuntimeError(f"the secret of {endpoint_id} kept changing during its rotation")

    async def signing_secrets(self, endpoint_id: str, now: datetime) -> builtins.list[str]:
        """The secrets a delivery at `now` is signed with: the current one first, then the previous one
        while its overlap lasts; none for an endpoint that does not exist."""
        async with self.engine.connect() as conn:
            row = await _row(conn, endpoint_id)
        if row is None:
            return []
        found = [self._open(row.secret_json, endpoint_id)]
        expires = row.previous_expires_at
        if row.previous_secret_json is not None and expires is not None and now < expires:
            found.append(self._open(row.previous_secret_json, endpoint_id))
        return found

    async def subscribed(self, event_type: str, *, conn: AsyncConnection | None = None) -> builtins.list[str]:
        """The ids of the enabled endpoints that want `event_type` (by name or by `*`), oldest first. With
        `conn`, read inside that transaction (the one that records the event)."""
        query = (
            select(WebhookEndpointRow.endpoint_id, WebhookEndpointRow.event_types_json)
            .where(WebhookEndpointRow.enabled.is_(True))
            .order_by(WebhookEndpointRow.created_at, WebhookEndpointRow.endpoint_id)
        )
        if conn is None:
            async with self.engine.connect() as own:
                rows = (await own.execute(query)).all()
        else:
            rows = (await conn.execute(query)).all()
        return [row.endpoint_id for row in rows if wanted(json.loads(row.event_types_json), event_type)]

    def _seal(self, secret: str, endpoint_id: str) -> str:
        key_id, nonce, ciphertext = self.keyring.encrypt(secret.encode(), associated=endpoint_id.encode())
        return SealedSecret(key_id=key_id, nonce=b64(nonce), ciphertext=b64(ciphertext)).model_dump_json()

    def _open(self, sealed_json: str, endpoint_id: str) -> str:
        try:
            sealed = SealedSecret.model_validate_json(sealed_json)
            plaintext = self.keyring.decrypt(
                sealed.key_id, unb64(sealed.nonce), unb64(sealed.ciphertext), associated=endpoint_id.encode()
            )
        except KeyringError as exc:
            raise VaultError(f"the signing secret of {endpoint_id} does not open: {exc}") from exc
        except (binascii.Error, ValueError) as exc:
            raise VaultError(f"the signing secret of {endpoint_id} does not open") from exc
        return plaintext.decode()


async def _row(conn: AsyncConnection, endpoint_id: str) -> Any:
    if not ENDPOINT_ID.fullmatch(endpoint_id):
        return None
    query = select(WebhookEndpointRow).where(WebhookEndpointRow.endpoint_id == endpoint_id)
    return (await conn.execute(query)).one_or_none()


def _endpoint(row: Any) -> WebhookEndpoint:
    """The record of a row (or of the values a row is made of), without its secrets."""
    return WebhookEndpoint(
        endpoint_id=row["endpoint_id"],
        url=row["url"],
        event_types=json.loads(row["event_types_json"]),
        description=row["description"],
        enabled=row["enabled"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        previous_secret_expires_at=row["previous_expires_at"],
    )


def _now() -> datetime:
    return datetime.now(UTC)
