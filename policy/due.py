"""When a complaint's current wait ends: the instant the policy acts on it next if nobody does.

Support works the open complaints in this order (the ledger's queue, `ledger.queue`), so the instant is the
one the workflow itself waits for in each status, read from the state the workflow keeps. Pure: no clock,
no I/O; a complaint whose instant has passed is overdue, which is for the reader to compare.
"""

from __future__ import annotations

from datetime import datetime

from policy.complaint import ComplaintState
from policy.models import ComplaintStatus


def next_due(state: ComplaintState) -> datetime | None:
    """The end of the complaint's current wait, by status; None once it is final (nothing is due).

    - under review: the deadline. R13: unreviewed at it, the complaint is escalated; for a claim about a
      number (R5, R6) it is the end of the review window.
    - rectifying: the deadline. R12: the deficiency still unfixed at it, the customer's remedy is due.
    - awaiting access: the customer's answer is due (R10: no answer counts as a refusal). The
      rectification clock is paused meanwhile, so the deadline is not what comes next.
    - escalated: the deadline, which has passed: nothing happens by itself any more and support must
      decide, so it stays due from the instant it was missed and sorts as overdue.
    - awaiting the remedy choice: the choice is due (R12: none by then means a full refund).
    """
    match state.status:
        case ComplaintStatus.UNDER_REVIEW | ComplaintStatus.RECTIFYING | ComplaintStatus.ESCALATED:
            return state.deadline
        case ComplaintStatus.AWAITING_ACCESS:
            return None if state.access is None else state.access.answer_due
        case ComplaintStatus.AWAITING_REMEDY_CHOICE:
            return state.remedy_choice_due
        case _:
            return None
