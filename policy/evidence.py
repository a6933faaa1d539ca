"""What counts as evidence (R6): a few kinds of file, small enough to keep, whose bytes match their type.

The limits live here so that the API, the CLI and the ledger refuse the same files with the same sentence.
The bytes themselves never enter a workflow: the ledger stores them and the workflow keeps `EvidenceRef`s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from pydantic import Field

from policy import refusals
from policy.models import Frozen
from policy.refusals import PolicyRefusal

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_TOTAL_BYTES = 10 * 1024 * 1024
MAX_FILES = 5


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in data


ACCEPTED_TYPES: dict[str, Callable[[bytes], bool]] = {
    "image/png": lambda data: data.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": lambda data: data.startswith(b"\xff\xd8\xff"),
    "image/gif": lambda data: data[:6] in (b"GIF87a", b"GIF89a"),
    "image/webp": lambda data: data[:4] == b"RIFF" and data[8:12] == b"WEBP",
    "application/pdf": lambda data: data.startswith(b"%PDF-"),
    "text/plain": _is_text,
}
"""Screenshots, documents and logs, each with the test its bytes must pass: a declared type is checked, not
trusted, because support opens these files."""


class EvidenceFile(Frozen):
    """An attachment as a customer sends it, before the ledger stores it."""

    name: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=1, max_length=100)
    data: bytes = Field(min_length=1, max_length=MAX_FILE_BYTES)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def check_evidence(files: Sequence[EvidenceFile]) -> None:
    """Raise `PolicyRefusal(evidence_rejected)` for too many, too large or mistyped files."""
    if len(files) > MAX_FILES:
        raise _rejected(f"at most {MAX_FILES} files may be attached")
    if sum(len(f.data) for f in files) > MAX_TOTAL_BYTES:
        raise _rejected(f"the attachments may weigh {MAX_TOTAL_BYTES // (1024 * 1024)} MiB together")
    for file in files:
        matches = ACCEPTED_TYPES.get(file.content_type)
        if matches is None:
            accepted = ", ".join(ACCEPTED_TYPES)
            raise _rejected(f"{file.name}: {file.content_type} is not accepted; send one of {accepted}")
        if not matches(file.data):
            raise _rejected(f"{file.name}: the file's content is not {file.content_type}")


def _rejected(message: str) -> PolicyRefusal:
    return PolicyRefusal(refusals.EVIDENCE_REJECTED, message)
