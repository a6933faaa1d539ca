"""What `make run` prints once the API answers: where each part listens and where mail lands, the policy
windows in force, the exports a second shell needs, and a development token per role."""

from __future__ import annotations

import os
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from dispatch.mail_sink import MAIL_FOLDER, SINK_HOST
from ledger.paths import DATA_DIR_ENV
from policy.models import Role
from policy.settings import PolicySnapshot
from starter.api.auth import CALLER_ROLES, TokenRules, mint_token
from starter.desk.settings import (
    policy_file,
)
from starter.local.preflight import API_HOST, Plan
from starter.web.sessions import sign_in_link
from starter.web.settings import WebSettings

DEV_TOKEN_TTL = timedelta(hours=24)


DEV_SUBS = {Role.BACKEND: "shop", Role.SUPPORT: "alice", Role.CUSTOMER: "cust-1"}


POLICY_WINDOWS = {
    "claim_window": "claim window",
    "rectify_window": "rectify window",
    "access_response_window": "access response window",
    "remedy_choice_window": "remedy choice window",
    "review_window": "review window",
    "review_reminder_before": "review reminder",
    "sms_wait": "SMS wait",
}
"""The policy's windows as the banner names them."""


SECRET_SETTINGS = ("REFUND_DESK_VAULT_KEYS", "REFUND_DESK_PAYLOAD_KEYS", "REFUND_DESK_JWT_SECRET")
"""What a second shell needs as well when this one set it, and no banner prints."""


def in_words(duration: timedelta) -> str:
    """`5 days`, `1 day 12 h`, `20 min`, `30 s`, `1.5 s`: how a person says a window."""
    whole, micros = divmod(duration // timedelta(microseconds=1), 1_000_000)
    parts = []
    for unit, size in (("day", 86_400), ("h", 3_600), ("min", 60)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count} {unit}s" if unit == "day" and count != 1 else f"{count} {unit}")
    if whole or micros or not parts:
        parts.append(f"{whole + micros / 1_000_000:g} s")
    return " ".join(parts)


def policy_lines(policy: PolicySnapshot) -> str:
    """The windows a complaint filed now gets, one a line: what a tester shortens before a run."""
    lines = []
    for field, label in POLICY_WINDOWS.items():
        value = in_words(getattr(policy, field))
        after = " before the review deadline" if field == "review_reminder_before" else ""
        lines.append(f"  {label:<24}{value}{after}")
    return "\n".join(lines)


def shown(path: Path) -> str:
    """A path as the person at the terminal reads it best: relative when it is below the cwd."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def second_shell(plan: Plan) -> str:
    """The exports a CLI in another shell needs to reach this instance. Secrets are named, not printed."""
    exports = {"TEMPORAL_ADDRESS": plan.temporal.address}
    for name in ("TEMPORAL_NAMESPACE", "REFUND_DESK_TASK_QUEUE", DATA_DIR_ENV, "DATABASE_URL"):
        if os.environ.get(name):
            exports[name] = os.environ[name]
    if DATA_DIR_ENV in exports:
        exports[DATA_DIR_ENV] = str(plan.data)
    files = {
        "REFUND_DESK_VAULT_KEY_FILE": plan.ledger.vault_key_file,
        "REFUND_DESK_PAYLOAD_KEY_FILE": plan.payload.payload_key_file,
        "REFUND_DESK_JWT_SECRET_FILE": plan.api.jwt_secret_file,
    }
    exports |= {name: str(path.absolute()) for name, path in files.items() if os.environ.get(name)}
    # Secrets given as files (ledger.secret_files): the path is no secret, and the CLI needs the same file.
    for name in (*SECRET_SETTINGS, "DATABASE_URL"):
        if path := os.environ.get(f"{name}_FILE"):
            exports[f"{name}_FILE"] = str(Path(path).absolute())
    hidden = [name for name in SECRET_SETTINGS if os.environ.get(name)]
    if "DATABASE_URL" in exports and make_url(exports["DATABASE_URL"]).password:
        del exports["DATABASE_URL"]
        hidden.insert(0, "DATABASE_URL")
    lines = [f"  export {name}={shlex.quote(value)}" for name, value in exports.items()]
    if hidden:
        lines.append(f"  and {', '.join(hidden)} as in this shell (not printed here)")
    return "\n".join(lines)


def mail_line(plan: Plan, sink_port: int | None) -> str:
    """Where the emails go: the local sink's folder and the command that lists it, else the SMTP server
    REFUND_DESK_SMTP_URL names (not printed: it may hold a password)."""
    if sink_port is None:
        return "sent through REFUND_DESK_SMTP_URL"
    folder = shown(plan.data / MAIL_FOLDER)
    return f"saved in {folder}/ (SMTP sink on {SINK_HOST}:{sink_port}); read: .venv/bin/refund-desk mail list"


def console_line(api: str, plan: Plan, jwt_secret: str) -> str:
    """The console's one-time sign-in link for the development support person, and how to get another."""
    rules = TokenRules(secret=jwt_secret, issuer=plan.api.token_issuer, audience=plan.api.token_audience)
    lifetime = WebSettings().sign_in_link_lifetime
    link = sign_in_link(api, rules, DEV_SUBS[Role.SUPPORT], lifetime, now=datetime.now(UTC))
    return (
        f"  Console    {link}\n"
        f"             (signs {DEV_SUBS[Role.SUPPORT]} in once, within {in_words(lifetime)}; another: "
        f".venv/bin/refund-desk console-link)\n"
        f"  Customers  their emails link to {api}/my/complaints/<id>\n"
    )


def metrics_line(api: str, worker_metrics: str | None) -> str:
    """Where Prometheus scrapes: the API's `/metrics` (requests, and the ledger's figures) and, when the
    worker serves them, the Temporal SDK's (docs/metrics.md)."""
    if worker_metrics is None:
        return f"  Metrics    {api}/metrics\n"
    host, _, port = worker_metrics.rpartition(":")
    shown_host = API_HOST if host in ("0.0.0.0", "::", "[::]") else host
    return (
        f"  Metrics    {api}/metrics (the API's requests, the ledger's figures)\n"
        f"             http://{shown_host}:{port}/metrics (the worker's Temporal SDK)\n"
    )


def banner(
    plan: Plan, jwt_secret: str, sink_port: int | None = None, worker_metrics: str | None = None
) -> str:
    """What a person needs next: where each part listens and mail lands, the policy, a second shell's
    exports, tokens. `sink_port` is the local mail sink's, None when mail goes to REFUND_DESK_SMTP_URL;
    `worker_metrics` the host:port where the worker serves its SDK metrics, if it does."""
    api = f"http://{API_HOST}:{plan.ports.api_port}"
    ui_host = API_HOST if plan.ip in ("0.0.0.0", "::") else plan.ip
    ttl = min(DEV_TOKEN_TTL, plan.api.token_max_lifetime)  # the API refuses a token living longer
    issuer, audience = plan.api.token_issuer, plan.api.token_audience
    tokens = "\n".join(
        f"  export {role.value.upper()}_TOKEN="
        f"{mint_token(jwt_secret, role, DEV_SUBS[role], ttl, issuer=issuer, audience=audience)}"
        for role in CALLER_ROLES
    )
    return (
        "\nRefund Desk is running:\n"
        f"  API        {api}   (docs {api}/docs, health {api}/healthz)\n"
        f"{console_line(api, plan, jwt_secret)}"
        f"  Temporal UI http://{ui_host}:{plan.ports.ui_port}   (decoded once signed in to the console,"
        f" with its Codec Server setting {api}/codec and cross-origin credentials: docs/encryption.md)\n"
        f"  Temporal   {plan.temporal.address} (namespace {plan.temporal.namespace})\n"
        f"  Worker     task queue {plan.temporal.task_queue}\n"
        f"{metrics_line(api, worker_metrics)}"
        f"  Mail       {mail_line(plan, sink_port)}\n"
        f"  Data       {shown(plan.data)}/\n"
        f"\nPolicy in force, saved to {shown(policy_file())} for the CLI (a REFUND_DESK_* window set in"
        f" its shell wins):\n{policy_lines(plan.policy)}\n"
        f"\nIn a second shell, for the CLI against this instance:\n{second_shell(plan)}\n"
        f"\nDevelopment tokens ({in_words(ttl)}; the customer is {DEV_SUBS[Role.CUSTOMER]}):\n{tokens}\n"
        "More: .venv/bin/refund-desk token --role customer --sub <id>\n"
        f"Ctrl-C stops everything; state stays in {shown(plan.data)}/.\n"
    )
