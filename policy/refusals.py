"""Why the policy says no: a stable code (docs/api.md's error codes) and a sentence for a person."""

from __future__ import annotations


class PolicyRefusal(Exception):
    """An action or claim the policy refuses. Carries no secrets: it is shown to whoever asked."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


INVALID_STATE = "invalid_state"
FORBIDDEN_ACTOR = "forbidden_actor"
COMPLAINT_ALREADY_OPEN = "complaint_already_open"
REPLACEMENT_OUT_OF_TOLERANCE = "replacement_out_of_tolerance"
REASON_CODE_REQUIRED = "reason_code_required"
REASON_CODE_NOT_ALLOWED = "reason_code_not_allowed"
REMEDY_BEING_ISSUED = "remedy_being_issued"
INVALID_CREDENTIALS = "invalid_credentials"
REMEDY_CHANGES_EXHAUSTED = "remedy_changes_exhausted"

# Support's doors (R6, R9): what the ledger keeps is served only as it was kept, and only while it is kept.
CREDENTIALS_DESTROYED = "credentials_destroyed"
EVIDENCE_DAMAGED = "evidence_damaged"

# Intake (R3-R6, R15): a claim refused before anything is written.
CLAIM_WINDOW_EXPIRED = "claim_window_expired"
INSUFFICIENT_REASONS = "insufficient_reasons"
EVIDENCE_REQUIRED = "evidence_required"
EVIDENCE_REJECTED = "evidence_rejected"
ACTIVATION_COMPLETED = "activation_completed"
ACTIVATION_PENDING = "activation_pending"
KIND_NOT_FOR_PRODUCT = "kind_not_for_product"
ALREADY_REFUNDED = "already_refunded"
ALREADY_REMEDIED = "already_remedied"
WRONG_WORKFLOW_ID = "wrong_workflow_id"
NOT_A_CONTINUATION = "not_a_continuation"

# Activations (R1, R2).
ACTIVATION_CONFLICT = "activation_conflict"
