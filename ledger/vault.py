"""Encryption for the credential vault: AES-256-GCM (`ledger.keyring`), each seal bound to its complaint.

Credentials are sealed by the client before they reach Temporal, so the workflow history only ever holds
ciphertext; the `store_credentials` activity checks the seal and files it under an opaque reference.
"""

from __future__ import annotations

import binascii
import json

from ledger.keyring import Keyring, KeyringError, b64, unb64
from policy.complaint import SealedSecret
from policy.credentials import ServerCredentials


class VaultError(Exception):
    """The seal does not open: wrong key, tampered ciphertext, or sealed for another complaint."""


class VaultKeyring(Keyring):
    """The vault's keys (REFUND_DESK_VAULT_KEYS): credentials sealed per complaint."""

    def seal(self, credentials: ServerCredentials, *, context: str) -> SealedSecret:
        """Encrypt for the vault, bound to `context` (the complaint id): a seal opens for that one only."""
        plaintext = _reveal_json(credentials).encode()
        key_id, nonce, ciphertext = self.encrypt(plaintext, associated=context.encode())
        return SealedSecret(key_id=key_id, nonce=b64(nonce), ciphertext=b64(ciphertext))

    def open(self, sealed: SealedSecret, *, context: str) -> ServerCredentials:
        try:
            plaintext = self.decrypt(
                sealed.key_id, unb64(sealed.nonce), unb64(sealed.ciphertext), associated=context.encode()
            )
        except KeyringError as exc:
            raise VaultError(f"the sealed credentials do not open: {exc}") from exc
        except (binascii.Error, ValueError) as exc:
            raise VaultError("the sealed credentials do not open") from exc
        return ServerCredentials.model_validate_json(plaintext)


def _reveal_json(credentials: ServerCredentials) -> str:
    """The one place a secret is written out in clear: into the plaintext that is about to be encrypted."""
    data = credentials.model_dump(mode="json")
    data["secret"] = credentials.secret.get_secret_value()
    return json.dumps(data)
