"""The shop's webhook endpoints and their delivery logs: the desk's calls for the backend.

`Webhooks` is a part of the desk like `Orders` (a `DeskCore` with more methods), over the ledger's
`WebhookEndpoints` and `DeliveryLog`; it needs no Temporal. What the desk decides here, beyond storing:
an endpoint's URL is http or https with a host, and never the API itself, whose own address the caller
names (`own_urls`): a webhook sent to the API would be answered 401 on every retry for days, and a receiver
the API could reach only through itself is a loop.
"""

from __future__ import annotations

import ipaddress
import socket
import unicodedata
from collections.abc import Iterable
from datetime import timedelta

import httpx

from ledger.delivery_log import DeliveryLog, DeliveryNotFound, DeliveryRecord
from ledger.webhook_endpoints import (
    UnknownEventType,
    WebhookEndpoint,
    WebhookEndpointNotFound,
    WebhookEndpoints,
    event_types_of,
)
from starter.desk.plumbing import DeskCore

LOOPBACK = "loopback"
"""What every name of this machine's loopback interface (`localhost`, `127.0.0.1`, `::1`, ...) stands for
when addresses are compared."""

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_CHARS = 2048

__all__ = [
    "DeliveryNotFound",
    "UnknownEventType",
    "WebhookEndpointNotFound",
    "WebhookUrlInvalid",
    "WebhookUrlLoopsBack",
    "Webhooks",
    "check_url",
    "loops_back",
]


class WebhookUrlInvalid(ValueError):
    """Not an http or https URL with a host."""


class WebhookUrlLoopsBack(ValueError):
    """The URL names the API itself."""


def check_url(url: str) -> None:
    """Raise `WebhookUrlInvalid` unless `url` is an absolute http or https URL with a host that the sender
    (httpx) accepts as it is: no spaces or control characters, a port if any in 1-65535."""
    if not url or len(url) > MAX_URL_CHARS:
        raise WebhookUrlInvalid(f"a webhook URL is 1-{MAX_URL_CHARS} characters")
    if any(char.isspace() or unicodedata.category(char) in ("Cc", "Cf") for char in url):
        raise WebhookUrlInvalid("a webhook URL has no spaces or control characters")
    try:
        parsed = httpx.URL(url)
        port = parsed.port
    except (httpx.InvalidURL, ValueError) as err:
        raise WebhookUrlInvalid(f"not a URL ({err})") from None
    if parsed.scheme not in DEFAULT_PORTS:
        raise WebhookUrlInvalid("a webhook URL is http:// or https://")
    if not parsed.host:
        raise WebhookUrlInvalid("a webhook URL names a host")
    if port is not None and not 0 < port < 65536:
        raise WebhookUrlInvalid("a webhook URL's port is 1-65535")


def address_of(url: str) -> tuple[str, int] | None:
    """(host, port) the URL reaches, the host canonical (every loopback name as `LOOPBACK`, IP addresses
    in one spelling) and the port explicit; None for what is not an http(s) URL."""
    try:
        parsed = httpx.URL(url)
        port = parsed.port or DEFAULT_PORTS.get(parsed.scheme)
    except (httpx.InvalidURL, ValueError):
        return None
    if port is None or not parsed.host:
        return None
    return _canonical_host(parsed.host), port


def loops_back(url: str, own_urls: Iterable[str]) -> bool:
    """Whether `url` reaches the same host and port as one of `own_urls`, the addresses the API answers
    on, whatever the scheme (http and https on one port are one listener)."""
    target = address_of(url)
    return target is not None and any(address_of(own) == target for own in own_urls)


def _canonical_host(host: str) -> str:
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return LOOPBACK
    ip = _ip_address(name)
    if ip is None:
        return name
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return LOOPBACK if ip.is_loopback or ip.is_unspecified else str(ip)


def _ip_address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host name spells, in any form a resolver reads as one: `127.0.0.1`, `::1`, and the
    short IPv4 forms `127.1`, `2130706433`, `0x7f.0.0.1`."""
    try:
        return ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        pass
    if not name or not all(char in "0123456789abcdefx." for char in name):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except OSError:
        return None


class Webhooks(DeskCore):
    """The backend's calls on its webhook endpoints. Unknown ids raise `WebhookEndpointNotFound` (and
    `DeliveryNotFound`); a bad subscription `UnknownEventType`; a bad URL `WebhookUrlInvalid` or
    `WebhookUrlLoopsBack`. No call but creating and rotating returns a secret."""

    @property
    def _endpoints(self) -> WebhookEndpoints:
        return WebhookEndpoints(self.ledger.engine, self.keyring)

    async def create_webhook_endpoint(
        self, url: str, event_types: Iterable[str], description: str = "", *, own_urls: Iterable[str] = ()
    ) -> tuple[WebhookEndpoint, str]:
        """A new endpoint and its secret, which is shown this once."""
        check_url(url)
        if loops_back(url, own_urls):
            raise WebhookUrlLoopsBack("a webhook URL may not point back at this API")
        return await self._endpoints.create(url, event_types_of(event_types), description)

    async def webhook_endpoints(self) -> list[WebhookEndpoint]:
        return await self._endpoints.list()

    async def webhook_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        found = await self._endpoints.get(endpoint_id)
        if found is None:
            raise WebhookEndpointNotFound(endpoint_id)
        return found

    async def update_webhook_endpoint(
        self, endpoint_id: str, *, enabled: bool | None = None, event_types: Iterable[str] | None = None
    ) -> WebhookEndpoint:
        """Change what is given (the subscription is checked before anything is written)."""
        types = None if event_types is None else event_types_of(event_types)
        endpoint = await self.webhook_endpoint(endpoint_id)
        if types is not None:
            endpoint = await self._endpoints.set_event_types(endpoint_id, types)
        if enabled is not None:
            endpoint = await self._endpoints.set_enabled(endpoint_id, enabled)
        return endpoint

    async def rotate_webhook_secret(
        self, endpoint_id: str, overlap: timedelta
    ) -> tuple[WebhookEndpoint, str]:
        """A new secret, shown this once; the previous one still signs for `overlap`."""
        secret = await self._endpoints.rotate_secret(endpoint_id, overlap, now=await self.now())
        return await self.webhook_endpoint(endpoint_id), secret

    async def delete_webhook_endpoint(self, endpoint_id: str) -> None:
        await self._endpoints.delete(endpoint_id)

    async def webhook_deliveries(
        self, endpoint_id: str, *, limit: int, before_id: int | None = None
    ) -> list[DeliveryRecord]:
        """The endpoint's deliveries, newest first, with their attempts."""
        await self.webhook_endpoint(endpoint_id)
        return await DeliveryLog(self.ledger.engine).deliveries_of_endpoint(endpoint_id, limit, before_id)

    async def redeliver_webhook(
        self, endpoint_id: str, delivery_id: int, *, retry_for: timedelta
    ) -> DeliveryRecord:
        """Queue one of the endpoint's deliveries again, due now, retried for `retry_for`."""
        await self.webhook_endpoint(endpoint_id)
        log = DeliveryLog(self.ledger.engine)
        return await log.redeliver(delivery_id, endpoint_id, await self.now(), retry_for)
