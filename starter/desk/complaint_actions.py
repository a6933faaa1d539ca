"""Support's and the customer's actions on a complaint, each one update on the complaint's workflow.

Each call names the handler it sends to (`DefectComplaintWorkflow.review`, `RefundClaimWorkflow.withdraw`),
and the desk picks the one of the complaint's kind. A claim has only `review` and `withdraw`; asking a claim
for anything else is the policy's `invalid_state`, answered before anything reaches Temporal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import TypeVar, cast

from temporalio.service import RPCError, RPCStatusCode

from policy.complaint import (
    AccessAnswer,
    AccessRequest,
    Action,
    ChooseRemedy,
    ComplaintState,
    MarkFixed,
    OfferReplacement,
    Review,
    Withdraw,
    already_final,
    check_action,
    check_kind_allows,
)
from policy.credentials import RevealCredentials, ServerCredentials, reveal_refusal
from policy.models import Actor, ComplaintEvent, ComplaintKind, Money, RemedyChoice, ReplacementOffer
from policy.refusals import CREDENTIALS_DESTROYED, PolicyRefusal
from starter.desk.complaints import Complaints
from starter.desk.errors import ComplaintNotFound, ComplaintUnresponsive
from starter.desk.plumbing import Update, may_see, update_name
from workflows.defect_complaint import DefectComplaintWorkflow
from workflows.refund_claim import RefundClaimWorkflow

Arg = TypeVar("Arg")
Answer = TypeVar("Answer")

KnownRefusal = Callable[[ComplaintState], PolicyRefusal | None]
"""Why an action must fail, as far as a complaint's projection (or its workflow's state) already shows."""


@dataclass(frozen=True)
class RevealedCredentials:
    """R9: the credentials the customer granted, as support sees them once the reveal is recorded."""

    complaint_id: str
    credentials: ServerCredentials
    recorded: ComplaintEvent
    """The audit trail's `credentials_revealed` event: who asked, and when."""


class ComplaintActions(Complaints):
    # ------------------------------------------------------------------------------------------ support

    async def review(self, complaint_id: str, review: Review) -> ComplaintState:
        """R8 for a defect; R5/R6 for a claim."""
        return await self._act(
            complaint_id, review, defect=DefectComplaintWorkflow.review, claim=RefundClaimWorkflow.review
        )

    async def request_access(
        self, complaint_id: str, actor: Actor, scope: str, reason: str
    ) -> ComplaintState:
        request = AccessRequest(actor=actor, scope=scope, reason=reason)
        return await self._act(complaint_id, request, defect=DefectComplaintWorkflow.request_access)

    async def mark_fixed(self, complaint_id: str, actor: Actor, note: str = "") -> ComplaintState:
        fix = MarkFixed(actor=actor, note=note)
        return await self._act(complaint_id, fix, defect=DefectComplaintWorkflow.mark_fixed)

    async def replacement_offer(
        self, complaint_id: str, sku: str, name: str, value: Decimal, currency: str | None = None
    ) -> ReplacementOffer:
        """A product support may offer, priced in `currency`, else in that of the complaint's order."""
        order = (await self.as_filed(complaint_id)).order
        worth = Money(amount=value, currency=currency or order.price.currency)
        return ReplacementOffer(sku=sku, name=name, value=worth)

    async def offer_replacement(
        self, complaint_id: str, actor: Actor, offer: ReplacementOffer
    ) -> ComplaintState:
        request = OfferReplacement(actor=actor, offer=offer)
        return await self._act(complaint_id, request, defect=DefectComplaintWorkflow.offer_replacement)

    async def reveal_granted_credentials(self, complaint_id: str, revealed_by: Actor) -> RevealedCredentials:
        """R9: the server credentials the customer granted, for support, while the complaint is open and
        its latest access request granted. The workflow records the reveal first (who and when); the vault
        is opened only once it has, so no reveal goes unrecorded. The projection refuses early only what it
        shows for certain (a claim, another role, an ended complaint); whether access stands granted is the
        workflow's to say. The vault entry goes with the complaint's final event: a reveal racing the end
        finds it gone (`credentials_destroyed`)."""
        revealed = await self._act(
            complaint_id,
            RevealCredentials(actor=revealed_by),
            defect=DefectComplaintWorkflow.reveal_credentials,
            known=partial(reveal_refusal, actor=revealed_by),
        )
        found = await self.ledger.sealed_secret(revealed.credentials_ref)
        if found is None or found[0] != complaint_id:
            raise PolicyRefusal(
                CREDENTIALS_DESTROYED,
                "the server credentials are no longer in the vault: they are destroyed as the complaint ends",
            )
        credentials = self.keyring.open(found[1], context=complaint_id)
        return RevealedCredentials(complaint_id, credentials, revealed.event)

    async def reveal_credentials(self, credentials_ref: str) -> ServerCredentials:
        """The vault entry behind a reference, opened without a trace in the audit trail: for tests that check
        what the vault keeps. Support's door (the API, the CLI) is `reveal_granted_credentials`."""
        found = await self.ledger.sealed_secret(credentials_ref)
        if found is None:
            raise KeyError(credentials_ref)
        complaint_id, sealed = found
        return self.keyring.open(sealed, context=complaint_id)

    # ----------------------------------------------------------------------------------------- customer

    async def grant_access(
        self, complaint_id: str, actor: Actor, credentials: ServerCredentials
    ) -> ComplaintState:
        """Seal the credentials here, so only ciphertext ever reaches Temporal (and then the vault)."""
        sealed = self.keyring.seal(credentials, context=complaint_id)
        answer = AccessAnswer(actor=actor, grant=True, credentials=sealed)
        return await self._act(complaint_id, answer, defect=DefectComplaintWorkflow.answer_access)

    async def refuse_access(self, complaint_id: str, actor: Actor) -> ComplaintState:
        answer = AccessAnswer(actor=actor, grant=False)
        return await self._act(complaint_id, answer, defect=DefectComplaintWorkflow.answer_access)

    async def choose_remedy(self, complaint_id: str, actor: Actor, choice: RemedyChoice) -> ComplaintState:
        """R12. The same choice again (a retry, or a customer clicking twice) is answered with the
        complaint as it stands and sends nothing: an accepted update is events in the workflow's history
        even when it records nothing, and a complaint's history must not grow with repeats."""
        record = await self.ledger.get_complaint(complaint_id, events=False)
        if record is not None and record.state.remedy_choice is choice and not record.state.is_final:
            check_action(record.state, "choose_remedy", actor, await self.now())
            if may_see(actor, record.state.customer_id):
                return await self.get(complaint_id)
        request = ChooseRemedy(actor=actor, choice=choice)
        return await self._act(complaint_id, request, defect=DefectComplaintWorkflow.choose_remedy)

    async def withdraw(self, complaint_id: str, actor: Actor, note: str = "") -> ComplaintState:
        withdrawal = Withdraw(actor=actor, note=note)
        return await self._act(
            complaint_id,
            withdrawal,
            defect=DefectComplaintWorkflow.withdraw,
            claim=RefundClaimWorkflow.withdraw,
        )

    # ---------------------------------------------------------------------------------------- plumbing

    async def _act(
        self,
        complaint_id: str,
        argument: Arg,
        *,
        defect: Update[Arg, Answer],
        claim: Update[Arg, Answer] | None = None,
        known: KnownRefusal | None = None,
    ) -> Answer:
        """Send the update of the complaint's kind, unless what is known of the complaint already shows why
        it must fail: `known`, by default a final complaint or an action its kind does not have, asked of
        the ledger's projection (a filing returns only once its complaint is there). The answer comes back
        once the ledger shows it (`once_in_the_ledger`), so a read right after it shows the action."""
        name = update_name(defect)
        known = known or partial(_refused_by_the_doors, action=cast(Action, name))
        record = await self.ledger.get_complaint(complaint_id, events=False)
        if record is None:
            raise ComplaintNotFound(complaint_id)
        state = record.state
        if (refusal := known(state)) is not None:
            raise refusal
        handle = await self.complaint_handle(complaint_id, record)
        update = defect if state.kind is ComplaintKind.MAJOR_DEFECT else claim
        if update is None:
            kind = state.kind.value
            raise LookupError(f"the policy allows {name} on a {kind} complaint, but no handler does")
        try:
            answer = await self.update(ComplaintUnresponsive(complaint_id), handle, update, argument)
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise
            # it ended between the ledger read and the update
            ended = await self.get(complaint_id)
            raise known(ended) or already_final(ended) from None
        if isinstance(answer, ComplaintState):
            await self.once_in_the_ledger(answer)
        return answer


def _refused_by_the_doors(state: ComplaintState, action: Action) -> PolicyRefusal | None:
    """What the policy's door table refuses for certain from a projection: any action once the complaint
    has ended, and an action its kind does not have."""
    if state.is_final:
        return already_final(state)
    try:
        check_kind_allows(state.kind, action)
    except PolicyRefusal as refusal:
        return refusal
    return None
