"""The chaos run's summary: what it found, as `chaos.json` keeps it and as the table a person reads at the
end of the run shows it, with the deployment it ran on (the ledger, the workers, the API processes) and
the chaos it made (worker kills, API kills, the server restart)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class KindFigures:
    rules: str
    expected: str
    count: int = 0
    started: int = 0
    finished: int = 0
    lost: int = 0
    as_expected: int = 0
    """Ended as the path expects, with no violation found in it by any check."""


@dataclass
class Summary:
    seed: int
    scenarios: int
    started: int
    finished: int
    lost: int
    complaints: dict[str, int]
    activations: dict[str, int]
    by_kind: dict[str, KindFigures]
    refunds: int
    refunded: dict[str, str]
    replacements: int
    max_refunds_per_complaint_or_activation: int
    max_refunds_per_order: int
    max_replacements_per_complaint: int
    customers_checked: int
    audit_events: int
    duplicate_requests: int
    worker_kills: int
    worker_starts: int
    worker_exits_by_itself: list[int]
    server_restarts: int
    server_down_seconds: float
    server_signal: str
    transient_errors: dict[str, int]
    transient_examples: dict[str, str]
    elapsed_seconds: float
    timed_out: bool
    violations: list[str]
    workdir: str
    runs_continued_as_new: int = 0
    """Runs whose history reached its bound and continued as new (the `defect_continued_as_new` path)."""
    notices: dict[str, int] = field(default_factory=dict)
    """Emails and webhooks delivered, notices with no address, webhooks sent again (a refused first try, a
    worker killed between sending and recording)."""
    reports: dict[str, int] = field(default_factory=dict)
    """Steps sent as the `report` signal rather than the update: in all, raced with the update, sent twice."""
    histories_replayed: int = 0
    """Every run of every workflow of the run, replayed at the end with the worker's workflows."""
    unreplayable: int = 0
    histories_by_status: dict[str, int] = field(default_factory=dict)
    replay_seconds: float = 0.0
    queries: dict[str, int] = field(default_factory=dict)
    """The random state queries: sent, answered, timed out, failed."""
    query_failures: dict[str, int] = field(default_factory=dict)
    query_failure_examples: dict[str, str] = field(default_factory=dict)
    deployment: dict[str, Any] = field(default_factory=dict)
    """What the run deployed: `ledger` ("sqlite" or "postgresql"), `workers`, `api_processes` (0: the desk
    in the run's process) and `api_policies` (the policies they file under, `api_processes` split evenly)."""
    api_kills: int = 0
    api_starts: int = 0
    api_exits_by_itself: list[int] = field(default_factory=list)
    http: dict[str, Any] = field(default_factory=dict)
    """What the driver's HTTP client saw (`bench.api_client.ApiFigures`); empty without API processes."""


def render(summary: Summary) -> str:
    """The summary table a person reads at the end of the run."""
    lines = [
        "",
        f"{'scenario':<28} {'rules':<11} {'expected':<15} {'count':>5} {'ended':>5} {'lost':>4} {'ok':>5}",
    ]
    for name, k in summary.by_kind.items():
        lines.append(
            f"{name:<28} {k.rules:<11} {k.expected:<15} "
            f"{k.count:>5} {k.finished:>5} {k.lost:>4} {k.as_expected:>5}"
        )
    c, a = summary.complaints, summary.activations
    money = ", ".join(f"{amount} {currency}" for currency, amount in summary.refunded.items())
    lines += [
        "",
        f"scenarios        {summary.scenarios} (seed {summary.seed})",
        f"complaints       started {c['started']}, finished {c['finished']}, lost {c['lost']}",
        f"activations      started {a['started']}, finished {a['finished']}, lost {a['lost']}",
        f"refunds          {summary.refunds} ({money or '-'}); "
        f"at most {summary.max_refunds_per_complaint_or_activation} per complaint or activation, "
        f"{summary.max_refunds_per_order} per order",
        f"replacements     {summary.replacements}; "
        f"at most {summary.max_replacements_per_complaint} per complaint",
        f"balances         {summary.customers_checked} customers, each equal to the sum of their refunds",
        f"audit events     {summary.audit_events}",
        f"continued runs   {summary.runs_continued_as_new} (histories past their bound, continued as new)",
        f"histories        {summary.histories_replayed} replayed ({_statuses(summary.histories_by_status)}) "
        f"in {summary.replay_seconds} s, {summary.unreplayable} unreplayable",
        f"random queries   {_queries(summary)}",
        f"notices          {_notices(summary.notices)}",
        f"duplicates sent  {summary.duplicate_requests}",
        f"reports          {_reports(summary.reports)}",
        f"deployment       {_deployment(summary.deployment)}",
        f"worker kills     {summary.worker_kills} (SIGKILL; {summary.worker_starts} worker starts, "
        f"{len(summary.worker_exits_by_itself)} exits by itself)",
        *_api_lines(summary),
        f"server restarts  {summary.server_restarts} (SIG{summary.server_signal.upper()}, back after "
        f"{summary.server_down_seconds} s)",
        f"retries          {sum(summary.transient_errors.values())} {summary.transient_errors}",
        f"elapsed          {summary.elapsed_seconds} s",
        f"violations       {len(summary.violations)}",
    ]
    lines += [f"  - {v}" for v in summary.violations[:50]]
    if len(summary.violations) > 50:
        lines.append(f"  ... and {len(summary.violations) - 50} more in the JSON summary")
    return "\n".join(lines)


def _reports(reports: dict[str, int]) -> str:
    if not reports.get("sent"):
        return "none (every step an update)"
    return (
        f"{reports['sent']} steps sent as signals, {reports['raced_with_update']} of them raced with "
        f"the update, {reports['sent_twice']} sent twice as a report"
    )


def _statuses(by_status: dict[str, int]) -> str:
    return ", ".join(f"{count} {status.replace('_', ' ')}" for status, count in by_status.items()) or "-"


def _queries(summary: Summary) -> str:
    q = summary.queries
    if not q.get("sent"):
        return "-"
    failed = f" {summary.query_failures}" if summary.query_failures else ""
    answers = (
        f"{q['answered']} answered ({q['answered_after_a_kill']} of them by the worker after a kill), "
        f"{q['timed_out']} timed out, {q['failed']} failed"
    )
    return f"{q['sent']} sent: {answers}{failed}"


def _notices(figures: dict[str, int]) -> str:
    if not figures:
        return "-"
    return (
        f"{figures['emails_sent']} emails and {figures['webhooks_sent']} webhooks delivered, "
        f"{figures['undeliverable']} with no address; webhooks sent again: "
        f"{figures['webhooks_refused_first']} after the receiver's 503, "
        f"{figures['webhooks_again_after_a_kill']} after a kill (at least once)"
    )


def _deployment(mode: dict[str, Any]) -> str:
    if not mode:
        return "-"
    workers = f"{mode['workers']} worker{'s' if mode['workers'] != 1 else ''}"
    apis = mode["api_processes"]
    if not apis:
        return f"ledger {mode['ledger']}, {workers}, the desk in the run's process (no API process)"
    policies = mode["api_policies"]
    each = apis // max(1, len(policies))
    return (
        f"ledger {mode['ledger']}, {workers}, {apis} API processes "
        f"({each} for each of the policies {', '.join(policies)})"
    )


def _api_lines(summary: Summary) -> list[str]:
    """The API processes' kills and what the HTTP client saw of them; nothing for a run without them."""
    if not summary.deployment.get("api_processes"):
        return []
    h = summary.http
    return [
        f"api kills        {summary.api_kills} (SIGKILL; {summary.api_starts} API starts, "
        f"{len(summary.api_exits_by_itself)} exits by itself)",
        f"http             {h['requests']} requests, {h['sent']} sent; {h['refused']} refused connections "
        f"moved on; {h['lost']} answers lost, sent again with their key; {h['replayed']} answered from "
        f"their key; {h['keys_in_use']} waits on a key in use, {h['keys_given_up']} given up; "
        f"{h['rate_limited']} rate limited; by status {h['by_status']}",
    ]
