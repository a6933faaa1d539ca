"""A customer's balance: the refunds the ledger credited them."""

from __future__ import annotations

from decimal import Decimal

from pydantic import (
    Field,
)

from ledger.records import Balance
from starter.api.schemas.common import (
    AmountOut,
    Out,
    UtcTime,
)


class BalanceEntryOut(Out):
    at: UtcTime
    kind: str
    amount: AmountOut
    currency: str
    refund_id: str


class BalanceOut(Out):
    customer_id: str
    currency: str
    balance: AmountOut
    entries: list[BalanceEntryOut] = Field(description="The entries in `currency`, oldest first.")
    balances: dict[str, AmountOut] = Field(description="Every currency the customer holds (an addition).")

    @classmethod
    def of(cls, balance: Balance, currency: str | None, default_currency: str) -> BalanceOut:
        """In the asked currency, else the customer's latest, else the shop's default."""
        chosen = currency or (balance.entries[-1].amount.currency if balance.entries else default_currency)
        return cls(
            customer_id=balance.customer_id,
            currency=chosen,
            balance=balance.totals.get(chosen, Decimal(0)),
            entries=[
                BalanceEntryOut(
                    at=e.at,
                    kind=e.kind,
                    amount=e.amount.amount,
                    currency=e.amount.currency,
                    refund_id=e.refund_id,
                )
                for e in balance.entries
                if e.amount.currency == chosen
            ],
            balances=dict(balance.totals),
        )
