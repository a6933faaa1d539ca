"""Every `workflow.patched` id the workflows use, with what the patch changes and which recorded histories
replay each of its branches.

A workflow started before a change replays its history without the patch's marker and takes the old
branch; one started since records the marker and takes the new. An id is therefore fixed for as long as
any workflow that saw it may still replay: renaming one is a change of behaviour. The histories named
here are the files in tests/histories/ (a "patched" one carries the patch's marker, an "unpatched" one
does not), and tests/test_patches.py holds them to it.
"""

from __future__ import annotations

from typing import Final

ONE_ACTIVITY_PER_TRANSITION: Final = "one-activity-per-transition"
"""An event and the notice it sends reach the ledger in one activity, one transaction: each activity is a
workflow task and three history events more. Complaints from before write the event, then send the notice
in a second activity (and a claim counts as filed between the two).

Patched: defect_replacement_chosen_twice.json, claim_withdrawn_before_filing.json,
defect_report_refused.json (a refused report's event and its notice to support, in one activity).
Unpatched: defect_rectified.json, defect_intake_checked_rectified.json, claim_withdrawn.json,
claim_escalated_then_approved.json (and the other defect_ and claim_ histories recorded before it).
"""

ESCALATION_BEFORE_LATE_REVIEW: Final = "escalation-before-late-review"
"""A review that reaches the workflow after the deadline, before the run has acted on it (a worker was
down), waits for the run's escalation (R13) first; and a claim's review period ends once support decides,
not once the claim is final. Complaints from before replay as they ran.

Patched: claim_withdrawn_before_filing.json.
Unpatched: claim_escalated_then_approved.json, claim_sms_refunded_on_approval.json, claim_withdrawn.json,
claim_invalid_number_rejected.json (a claim asks on every turn of its review period; a defect only for a
review after its deadline, which no recorded history has).
"""

INTAKE_IN_WORKFLOW: Final = "intake-in-workflow"
"""The defect workflow checks intake itself (R3, R4, and the workflow id that keeps R15) as it starts, as
the desk did before starting it. Complaints filed before replay without the check.

Patched: defect_intake_checked_rectified.json, defect_replacement_chosen_twice.json.
Unpatched: defect_refunded_by_default_after_access.json, defect_replaced_with_offer.json,
defect_rectified.json, defect_access_silence.json, defect_escalated_then_rejected.json,
defect_withdrawn_while_choosing.json (recorded by the release before the patch).
"""

WAIT_FOR_FILING: Final = "claim-actions-wait-for-filing"
"""An action on a claim accepted while the run still checks intake (R5's activity) waits until the claim is
filed: the trail starts with "filed", and nothing is paid on a claim intake would refuse. Claims started
before replay with the action taken before "filed", as it happened.

Patched: claim_withdrawn_before_filing.json.
Unpatched: none recorded (the workflow asks only when an action comes before "filed"; in the other claim
histories every action came after it).
"""

REPEATED_CHOICE_UNRECORDED: Final = "repeated-choice-unrecorded"
"""The same remedy choice again (a client's retry) changes nothing and records no second `remedy_chosen`
event (R12, R16). Complaints from before replay with the repeat recorded.

Patched: defect_replacement_chosen_twice.json.
Unpatched: none recorded (the workflow asks only when a choice repeats; no older history repeats one).
"""

CONTINUE_AS_NEW_PAST_BOUND: Final = "continue-as-new-past-history-bound"
"""A defect complaint whose run has reached `history_events_per_run` events (or that Temporal suggests
continue) continues as new at its next wait, once no handler runs, with its state carried over; the new
run resumes from the status it was in. The marker is recorded only where the bound is reached, so every
complaint that never reached it replays either way.

Patched: defect_continued_as_new.json (the first run, which ends by continuing; the run it continued as,
in the replay suite too, never reached the bound and carries no marker).
Unpatched: defect_continued_as_new.continued.json, defect_replacement_chosen_twice.json (and every other
defect_ history: none reached the bound).
"""

DECIDE_FROM_WHAT_WOKE: Final = "decide-from-what-woke"
"""After a complaint's timer fires, the run decides from the timer (its instant has come) rather than from
`workflow.now()`, which a query picked up after the timer fired sees stale (`workflows.clock`). The marker
is recorded where a timer first fires, so complaints whose timers never fired replay with or without it;
those started before replay with the clock they recorded.

Patched: defect_woke_escalated_then_rejected.json, defect_woke_refunded_by_default_after_access.json,
claim_woke_escalated_then_approved.json (the same scenarios as the unpatched ones, recorded since).
Unpatched: defect_escalated_then_rejected.json, defect_refunded_by_default_after_access.json,
claim_escalated_then_approved.json, defect_access_silence.json (recorded before, their timers fired).
"""
