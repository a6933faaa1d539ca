"""Encryption for the credential vault: AES-256-GCM, key id kept beside the ciphertext, old keys still open.

Credentials are sealed by the client before they reach Temporal, so the workflow history only ever holds
ciphertext; the `store_credentials` activity checks the seal and files it under an opaque reference.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from policy.complaint import SealedSecret, ServerCredentials


class VaultError(Exception):
    """The seal does not open: wrong key, tampered ciphertext, or sealed for another complaint."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode())


class VaultKeyring:
    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        if current not in keys:
            raise ValueError("the current key must be in the keyring")
        for kid, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"vault key {kid!r} must be 32 bytes (AES-256)")
        self._keys = dict(keys)
        self.current = current

    @classmethod
    def parse(cls, spec: str) -> VaultKeyring:
        """`kid:base64key,kid:base64key`: the first key seals, every key opens."""
        keys: dict[str, bytes] = {}
        for part in spec.split(","):
            kid, sep, encoded = part.strip().partition(":")
            if not sep or not kid:
                raise ValueError('vault keys look like "kid:base64key[,kid:base64key]"')
            if kid in keys:
                raise ValueError(f"vault key {kid!r} appears twice")
            try:
                keys[kid] = _unb64(encoded)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"vault key {kid!r} is not base64") from exc
        return cls(keys, current=spec.split(",")[0].strip().partition(":")[0])

    @classmethod
    def generate(cls, kid: str = "k1") -> VaultKeyring:
        return cls({kid: AESGCM.generate_key(bit_length=256)}, current=kid)

    @classmethod
    def from_file(cls, path: Path) -> VaultKeyring:
        """A development convenience: the keyring lives in a file created (mode 0600) on first use."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(cls.generate().spec())
        return cls.parse(path.read_text().strip())

    def spec(self) -> str:
        ordered = [self.current, *(kid for kid in self._keys if kid != self.current)]
        return ",".join(f"{kid}:{_b64(self._keys[kid])}" for kid in ordered)

    def seal(self, credentials: ServerCredentials, *, context: str) -> SealedSecret:
        """Encrypt for the vault, bound to `context` (the complaint id): a seal opens for that one only."""
        nonce = os.urandom(12)
        plaintext = _reveal_json(credentials).encode()
        ciphertext = AESGCM(self._keys[self.current]).encrypt(nonce, plaintext, context.encode())
        return SealedSecret(key_id=self.current, nonce=_b64(nonce), ciphertext=_b64(ciphertext))

    def open(self, sealed: SealedSecret, *, context: str) -> ServerCredentials:
        key = self._keys.get(sealed.key_id)
        if key is None:
            raise VaultError(f"no vault key {sealed.key_id!r}")
        try:
            plaintext = AESGCM(key).decrypt(_unb64(sealed.nonce), _unb64(sealed.ciphertext), context.encode())
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise VaultError("the sealed credentials do not open") from exc
        return ServerCredentials.model_validate_json(plaintext)


def _reveal_json(credentials: ServerCredentials) -> str:
    """The one place a secret is written out in clear: into the plaintext that is about to be encrypted."""
    data = credentials.model_dump(mode="json")
    data["secret"] = credentials.secret.get_secret_value()
    return json.dumps(data)
