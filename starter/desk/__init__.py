"""The desk: the client over Temporal and the ledger that the API, the CLI and the worker share."""

from starter.desk.complaint_actions import RevealedCredentials
from starter.desk.complaints import EvidenceNotFound
from starter.desk.connection import connect, register_search_attributes
from starter.desk.desk import ComplaintDesk, open_desk
from starter.desk.errors import (
    ActivationNotFound,
    ActivationUnresponsive,
    ComplaintNotFound,
    ComplaintUnresponsive,
    OrderNotFound,
    Unresponsive,
)

__all__ = [
    "ActivationNotFound",
    "ActivationUnresponsive",
    "ComplaintDesk",
    "ComplaintNotFound",
    "ComplaintUnresponsive",
    "EvidenceNotFound",
    "OrderNotFound",
    "RevealedCredentials",
    "Unresponsive",
    "connect",
    "open_desk",
    "register_search_attributes",
]
