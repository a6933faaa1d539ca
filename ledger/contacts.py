"""Customers' email addresses: where their notices go. Sealed with the vault's keys (AES-GCM, bound to the
customer id), so the ledger never holds one in clear; only the dispatcher opens them, to send."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.keyring import b64, unb64
from ledger.schema import CustomerContactRow
from ledger.vault import VaultKeyring


def _context(customer_id: str) -> bytes:
    return f"contact:{customer_id}".encode()


class Contacts:
    def __init__(self, engine: AsyncEngine, keyring: VaultKeyring) -> None:
        self.engine = engine
        self.keyring = keyring
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def save(self, customer_id: str, email: str) -> None:
        """The customer's address from now on (the latest order that gave one wins)."""
        key_id, nonce, ciphertext = self.keyring.encrypt(email.encode(), associated=_context(customer_id))
        values = {
            "key_id": key_id,
            "nonce": b64(nonce),
            "ciphertext": b64(ciphertext),
            "updated_at": datetime.now(UTC),
        }
        upsert = self._insert(CustomerContactRow).values(customer_id=customer_id, **values)
        upsert = upsert.on_conflict_do_update(index_elements=["customer_id"], set_=values)
        async with self.engine.begin() as conn:
            await conn.execute(upsert)

    async def email_of(self, customer_id: str) -> str | None:
        """The customer's address, or None if no order gave one."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(CustomerContactRow).where(CustomerContactRow.customer_id == customer_id)
                )
            ).one_or_none()
        if row is None:
            return None
        plain = self.keyring.decrypt(
            row.key_id, unb64(row.nonce), unb64(row.ciphertext), associated=_context(customer_id)
        )
        return plain.decode()
