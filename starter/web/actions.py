"""Which actions a page offers: exactly those the policy's own guards would let this person take now, so a
button is never shown for an action the workflow would refuse (and a refusal that comes anyway, from a
change in between, is shown with its reason)."""

from __future__ import annotations

from datetime import datetime

from policy.complaint import ACTIONS_OF_KIND, Action, ComplaintState, check_action
from policy.credentials import check_reveal
from policy.models import Actor
from policy.refusals import PolicyRefusal


def allowed_actions(state: ComplaintState, actor: Actor, now: datetime) -> frozenset[Action]:
    """The actions of the complaint's kind that `actor` may take at `now` (`check_action`)."""
    allowed: set[Action] = set()
    for action in ACTIONS_OF_KIND[state.kind]:
        try:
            check_action(state, action, actor, now)
        except PolicyRefusal:
            continue
        allowed.add(action)
    return frozenset(allowed)


def may_reveal(state: ComplaintState, actor: Actor) -> bool:
    """Whether `actor` may see the server credentials the customer granted (`policy.credentials`)."""
    try:
        check_reveal(state, actor)
    except PolicyRefusal:
        return False
    return True
