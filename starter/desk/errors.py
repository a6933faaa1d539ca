"""What the desk raises besides the policy's own refusals (`policy.refusals.PolicyRefusal`)."""

from __future__ import annotations


class ComplaintNotFound(Exception):
    """No complaint has this id (or none the asker may see)."""


class OrderNotFound(Exception):
    """No order has this id (or none the asker may see)."""


class ActivationNotFound(Exception):
    """No activation has this id (or none the asker may see)."""


class Unresponsive(Exception):
    """A workflow did not answer within the desk's patience: no worker is polling, most likely. An action
    sent may still take effect once one is; read the state before sending it again."""


class ComplaintUnresponsive(Unresponsive):
    """The complaint's workflow did not answer in time."""


class ActivationUnresponsive(Unresponsive):
    """The activation's workflow did not answer in time."""
