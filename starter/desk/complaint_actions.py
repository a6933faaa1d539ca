"""Support's and the customer's actions on a complaint, each one update on the complaint's workflow.

Each call names the handler it sends to (`DefectComplaintWorkflow.review`, `RefundClaimWorkflow.withdraw`),
and the desk picks the one of the complaint's kind. A claim has only `review` and `withdraw`; asking a claim
for anything else is the policy's `invalid_state`, answered before anything reaches Temporal.
"""

from __future__ import annotations

from decimal import Decimal
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
    ServerCredentials,
    Withdraw,
    already_final,
    check_action,
    check_kind_allows,
)
from policy.models import Actor, ComplaintKind, Money, RemedyChoice, ReplacementOffer
from starter.desk.complaints import Complaints
from starter.desk.errors import ComplaintUnresponsive
from starter.desk.plumbing import Update, may_see, update_name
from workflows.defect_complaint import DefectComplaintWorkflow
from workflows.refund_claim import RefundClaimWorkflow

Arg = TypeVar("Arg")


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

    async def reveal_credentials(self, credentials_ref: str) -> ServerCredentials:
        """For the technician who needs the access: opens the vault entry behind a reference."""
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
        defect: Update[Arg, ComplaintState],
        claim: Update[Arg, ComplaintState] | None = None,
    ) -> ComplaintState:
        """Send the update of the complaint's kind, unless the ledger already shows why it must fail (a
        final complaint, an action its kind does not have)."""
        action = cast(Action, update_name(defect))
        record = await self.ledger.get_complaint(complaint_id, events=False)
        if record is not None and record.state.is_final:
            raise already_final(record.state)
        handle = await self.complaint_handle(complaint_id, record)
        if record is not None:
            kind = record.state.kind
        else:  # just filed, not projected yet: the workflow says
            kind = (await self.query_complaint(complaint_id, handle)).kind
        check_kind_allows(kind, action)
        update = defect if kind is ComplaintKind.MAJOR_DEFECT else claim
        if update is None:
            raise LookupError(f"the policy allows {action} on a {kind.value} complaint, but no handler does")
        try:
            return await self.update(ComplaintUnresponsive(complaint_id), handle, update, argument)
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:  # it ended between the ledger read and the update
                raise already_final(await self.get(complaint_id)) from None
            raise
