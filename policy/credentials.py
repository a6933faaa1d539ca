"""Server credentials (docs/policy.md R9): what a customer hands over, and who may see it once granted.

The credentials are the one secret a complaint touches: held in clear only by the client that seals them
and by the technician who reveals them, every reveal recorded first. Their model and the reveal guard sit
together here, apart from the state machine in `policy.complaint`, so one module shows all that handles
them. The sealed form the workflow carries (`SealedSecret`) stays in `policy.complaint` with the access
answer that brings it: this module reads the complaint's state from there, and each importing the other
would be a cycle.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from policy import refusals
from policy.complaint import ComplaintState
from policy.models import Actor, ComplaintEvent, ComplaintKind, Frozen, Role
from policy.refusals import PolicyRefusal


class ServerCredentials(Frozen):
    """What a customer hands over for R9. Only ever held in clear by the client that seals it and by the
    technician who reveals it from the vault; `secret` hides itself from repr and logs."""

    host: str = Field(min_length=1, max_length=255)
    username: str = Field(min_length=1, max_length=255)
    secret: SecretStr = Field(min_length=1, max_length=4_096)
    notes: str | None = Field(default=None, max_length=2_000)

    @field_validator("secret")
    @classmethod
    def _secret_is_text(cls, value: SecretStr) -> SecretStr:
        """A secret that is not Unicode text (a lone surrogate from JSON's `\\ud800`) could be sealed but
        never opened again: the vault's activity would retry it for ever."""
        try:
            value.get_secret_value().encode()
        except UnicodeEncodeError:
            raise ValueError("the secret is not text (it contains a lone surrogate)") from None
        return value


# ------------------------------------------------------------------------------ revealing credentials


class RevealCredentials(Frozen):
    """R9: support asks to see the credentials the customer granted. The workflow records who asked and
    when; the desk opens the vault only once it has, so that no reveal goes unrecorded."""

    actor: Actor


class CredentialsRevealed(Frozen):
    """What the workflow answers a recorded reveal with: the vault entry it recorded the reveal of, and the
    audit trail's event (R16). Never the credentials: the workflow does not hold them."""

    credentials_ref: str
    event: ComplaintEvent


def reveal_refusal(state: ComplaintState, actor: Actor) -> PolicyRefusal | None:
    """Why `actor` may not see this complaint's server credentials whatever its access request says: a
    claim has no server access, only support reveals, and an ended complaint's credentials were destroyed
    with its final event (as a settling one's are about to be). None if nothing of that stands in the way."""
    if state.kind is not ComplaintKind.MAJOR_DEFECT:
        return PolicyRefusal(
            refusals.INVALID_STATE, f"a {state.kind.value} complaint has no server access to reveal"
        )
    if actor.role is not Role.SUPPORT:
        return PolicyRefusal(refusals.FORBIDDEN_ACTOR, "only support may reveal server credentials")
    if state.is_final:
        return PolicyRefusal(
            refusals.INVALID_STATE,
            f"the complaint is {state.status.value}: it has ended, and its server credentials with it",
        )
    if state.settling:
        return PolicyRefusal(
            refusals.REMEDY_BEING_ISSUED, "the remedy is being issued; the server credentials are about to go"
        )
    return None


def check_reveal(state: ComplaintState, actor: Actor) -> str:
    """R9: support may see the credentials while the complaint is open and its latest access request was
    granted; returns their vault reference, else raises `PolicyRefusal`."""
    refusal = reveal_refusal(state, actor)
    if refusal is not None:
        raise refusal
    access = state.access
    if access is None:
        raise PolicyRefusal(refusals.INVALID_STATE, "no server access was requested, so none was granted")
    if not access.granted or access.credentials_ref is None:
        raise PolicyRefusal(
            refusals.INVALID_STATE,
            f"access request #{access.number} is not granted (yet): there are no credentials to reveal",
        )
    return access.credentials_ref
