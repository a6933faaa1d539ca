"""AES-256-GCM keyrings with rotation: the current key encrypts, every key on the ring still decrypts.

Two keyrings use this, with keys of their own: the credential vault (`ledger.vault`) and the payload codec
(`starter.desk.codec`). A key is named by a short id stored beside each ciphertext, so rotating means
putting a new key first and keeping the old ones until nothing sealed with them is still read.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

NONCE_BYTES = 12
KEY_BYTES = 32


class KeyringError(Exception):
    """A ciphertext does not open: its key is not on the ring, or it was tampered with."""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode())


class Keyring:
    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        if current not in keys:
            raise ValueError("the current key must be in the keyring")
        for kid, key in keys.items():
            if not kid or len(kid.encode()) > 64 or "," in kid or ":" in kid:
                raise ValueError(f"key id {kid!r} must be 1-64 bytes without ',' or ':'")
            if len(key) != KEY_BYTES:
                raise ValueError(f"key {kid!r} must be {KEY_BYTES} bytes (AES-256)")
        self._keys = dict(keys)
        self.current = current

    @classmethod
    def parse(cls, spec: str) -> Self:
        """`kid:base64key,kid:base64key`: the first key encrypts, every key decrypts."""
        keys: dict[str, bytes] = {}
        for part in spec.split(","):
            kid, sep, encoded = part.strip().partition(":")
            if not sep or not kid:
                raise ValueError('keys look like "kid:base64key[,kid:base64key]"')
            if kid in keys:
                raise ValueError(f"key {kid!r} appears twice")
            try:
                keys[kid] = unb64(encoded)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"key {kid!r} is not base64") from exc
        return cls(keys, current=spec.split(",")[0].strip().partition(":")[0])

    @classmethod
    def generate(cls, kid: str = "k1") -> Self:
        return cls({kid: AESGCM.generate_key(bit_length=256)}, current=kid)

    @classmethod
    def from_file(cls, path: Path) -> Self:
        """A development convenience: the keyring lives in a file created (mode 0600) on first use."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written aside, then linked into place: a process starting alongside (the worker beside the
            # API) either sees no file or a whole one, and the first link wins.
            fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(cls.generate().spec())
                with contextlib.suppress(FileExistsError):
                    path.hardlink_to(draft)
            finally:
                Path(draft).unlink()
        return cls.parse(path.read_text().strip())

    @classmethod
    def configured(cls, spec: SecretStr | None, file: Path) -> Self:
        """The keys a setting names (`spec`), else the development file beside the data."""
        return cls.parse(spec.get_secret_value()) if spec is not None else cls.from_file(file)

    def spec(self) -> str:
        ordered = [self.current, *(kid for kid in self._keys if kid != self.current)]
        return ",".join(f"{kid}:{b64(self._keys[kid])}" for kid in ordered)

    def rotated(self, new: Keyring) -> Self:
        """This ring with `new`'s current key put first: it encrypts from now on, the old keys still open."""
        keys = {new.current: new._keys[new.current], **self._keys}
        return type(self)(keys, current=new.current)

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def encrypt(self, plaintext: bytes, *, associated: bytes = b"") -> tuple[str, bytes, bytes]:
        """(key id, nonce, ciphertext) under the current key; `associated` must match to decrypt."""
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(self._keys[self.current]).encrypt(nonce, plaintext, associated)
        return self.current, nonce, ciphertext

    def decrypt(self, key_id: str, nonce: bytes, ciphertext: bytes, *, associated: bytes = b"") -> bytes:
        key = self._keys.get(key_id)
        if key is None:
            raise KeyringError(f"no key {key_id!r} on the keyring")
        try:
            return AESGCM(key).decrypt(nonce, ciphertext, associated)
        except (InvalidTag, ValueError) as exc:
            raise KeyringError(f"the ciphertext does not open with key {key_id!r}") from exc
