"""What support's doors answer: an evidence file's bytes (R6) and the server credentials a customer
granted (R9), the one answer of the API that carries a secret in clear."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Path
from pydantic import Field

from policy.evidence import ACCEPTED_TYPES, safe_name
from starter.api.schemas.common import Out, UtcTime
from starter.desk import RevealedCredentials

EvidenceRef = Annotated[
    str,
    Path(
        max_length=64,
        description="As the complaint's `evidence` lists it: `ev_...`.",
        examples=["ev_" + "0" * 32],
    ),
]

NO_STORE = "no-store"
"""No cache between the API and its caller keeps an evidence file or a secret."""


def attachment(name: str) -> str:
    """`Content-Disposition` for a stored evidence file: always a download, under its stored name made safe
    again for a header (a base name of printable ASCII, `"` and `\\` replaced), with the name itself in
    UTF-8 as `filename*` (RFC 6266) where it is more than ASCII."""
    kept = safe_name(name, "")
    plain = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in kept)
    header = f'attachment; filename="{plain}"'
    return header if plain == kept else f"{header}; filename*=UTF-8''{quote(kept, safe='')}"


EVIDENCE_HEADERS: dict[str, dict[str, Any]] = {
    "Content-Disposition": {
        "description": 'Always `attachment; filename="<stored name>"`, with `filename*` for a name beyond '
        "ASCII.",
        "schema": {"type": "string"},
    },
    "X-Content-Type-Options": {"description": "`nosniff`.", "schema": {"type": "string"}},
    "Cache-Control": {"description": "`no-store`.", "schema": {"type": "string"}},
}

EVIDENCE_FILE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file's bytes as filed, checked against the SHA-256 recorded at filing, with "
        "its stored content type.",
        "content": {kind: {"schema": {"type": "string", "format": "binary"}} for kind in ACCEPTED_TYPES},
        "headers": EVIDENCE_HEADERS,
    }
}
"""The OpenAPI answer of `GET .../evidence/{ref}`: a file of one of the types intake accepts."""


class RevealedCredentialsOut(Out):
    """R9: the credentials the customer granted, once support's reveal is in the audit trail. Answered
    with `Cache-Control: no-store`, and never kept for an `Idempotency-Key`."""

    complaint_id: str
    host: str
    username: str
    secret: str = Field(description="In clear: this answer is the one place it is.")
    notes: str | None
    revealed_by: str = Field(description="The support agent, as the audit trail records them.")
    revealed_at: UtcTime
    event_seq: int = Field(description="The `credentials_revealed` event's `seq` in the complaint's events.")

    @classmethod
    def of(cls, revealed: RevealedCredentials) -> RevealedCredentialsOut:
        credentials = revealed.credentials
        return cls(
            complaint_id=revealed.complaint_id,
            host=credentials.host,
            username=credentials.username,
            secret=credentials.secret.get_secret_value(),
            notes=credentials.notes,
            revealed_by=revealed.recorded.actor,
            revealed_at=revealed.recorded.at,
            event_seq=revealed.recorded.seq,
        )
