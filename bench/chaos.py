"""The chaos run: complaints and activations driven to their ends while the worker is SIGKILLed at random
and the Temporal dev server is stopped and restarted once, then checked for lost work and double money.

    .venv/bin/python -m bench.chaos [--complaints 1000] [--seed S] [--kill-every 2..10] [--timeout 1200]
                                    [--server-signal term|kill] [--queries-per-second 10]

Everything runs on loopback under a work directory of its own (the dev server's `temporal.db`, the SQLite
ledger, the processes' logs, `chaos.log` and the summary `chaos.json`), on ports picked free at start. The
run is bounded by `--timeout`: whatever has not ended by then counts as lost, and the run fails saying so.
Exit status 0 when every check holds, 1 on any violation.

The dev server is restarted with SIGKILL by default (`--server-signal term` for a clean stop), the harder
case: whatever it acknowledged must survive in its SQLite file, and the checks at the end (every
scenario's outcome, every refund) are what would show it did not.

While the scenarios are driven, state queries go at random to live complaints and activations, as support's
tools and the web UI send them (`--queries-per-second`, each with a short rpc timeout): some reach a new
worker after a timer fired while no worker polled. At the end every run of every workflow on the run's task
queue (completed, continued as new, failed, still running) is replayed with the worker's workflows, and a
history that does not replay is a violation (`unreplayable_history`).

The worker runs as deployed: `python worker.py` with its default settings, Temporal's sticky cache as
`REFUND_DESK_WORKFLOW_CACHE` sets it (starter/desk/settings.py). With the cache on, a query picked up after
a timer fired once made a worker decide on the previous task's clock and write a history no worker could
replay (docs/reliability.md); the random queries and the replay at the end are the run's watch on that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.checks import (
    LedgerFigures,
    ReplayFigures,
    ledger_violations,
    replay_violations,
    runs_continued,
    temporal_violations,
)
from bench.driver import PATIENCE, Driver, RandomQueries, Scenario, StepFailed
from bench.notices import People, people
from bench.processes import DevServer, Supervisor, WorkerProcess, free_port
from bench.scenarios import PATH_BY_NAME, PATHS, Windows, check_activation, check_complaint
from ledger.migrate import upgrade_url
from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.models import Money, Order, Product, ProductKind
from starter.desk import ComplaintDesk, connect
from starter.desk.codec import PayloadKeyring, encrypting_converter
from starter.desk.settings import TemporalSettings

PRODUCTS = {
    ProductKind.VIRTUAL_NUMBER: Product(
        sku="vn-uk-whatsapp", kind=ProductKind.VIRTUAL_NUMBER, name="UK number for WhatsApp"
    ),
    ProductKind.SOFTWARE: Product(sku="plugin-seo-pro", kind=ProductKind.SOFTWARE, name="SEO Pro plugin"),
}


@dataclass
class Options:
    complaints: int = 1000
    seed: int = 0
    kill_every: tuple[float, float] = (2.0, 10.0)
    min_kills: int = 2
    server_restart: bool = True
    server_signal: str = "kill"
    timeout: float = 1200.0
    concurrency: int = 200
    patience: float = PATIENCE.total_seconds()
    duplicates: float = 0.1
    short: float = 4.0
    long: float = 300.0
    queries_per_second: float = 10.0
    query_timeout: float = 5.0
    replay_lanes: int = 4
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="chaos-")))
    json_path: Path | None = None


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
    histories_replayed: int = 0
    """Every run of every workflow of the run, replayed at the end with the worker's workflows."""
    unreplayable: int = 0
    histories_by_status: dict[str, int] = field(default_factory=dict)
    replay_seconds: float = 0.0
    queries: dict[str, int] = field(default_factory=dict)
    """The random state queries: sent, answered, timed out, failed."""
    query_failures: dict[str, int] = field(default_factory=dict)
    query_failure_examples: dict[str, str] = field(default_factory=dict)


class Log:
    """Timestamped lines to stdout and to the work directory's chaos.log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.began = time.monotonic()

    def __call__(self, text: str) -> None:
        line = f"[{time.monotonic() - self.began:7.1f}s] {text}"
        print(line, flush=True)
        with self.path.open("a") as out:
            out.write(line + "\n")


def plan(options: Options, rng: random.Random) -> list[Scenario]:
    """`complaints` scenarios, every path of the policy in turn, shuffled by the seed; customers share
    orders (about five each) so that a balance adds up several refunds."""
    names = [PATHS[i % len(PATHS)].name for i in range(options.complaints)]
    rng.shuffle(names)
    customers = max(1, options.complaints // 5)
    run = f"{options.seed:x}-{secrets.token_hex(2)}"
    placed_at = datetime.now(UTC)
    scenarios: list[Scenario] = []
    for index, name in enumerate(names):
        path = PATH_BY_NAME[name]
        cents = rng.randint(50, 9_999) if path.product is ProductKind.SOFTWARE else rng.randint(20, 500)
        order = Order(
            order_id=f"chaos-{run}-{index:05d}",
            customer_id=f"cust-{run}-{rng.randrange(customers):04d}",
            product=PRODUCTS[path.product],
            price=Money(amount=Decimal(cents) / 100, currency="EUR"),
            placed_at=placed_at,
        )
        scenarios.append(
            Scenario(
                index=index,
                kind=name,
                rules=path.rules,
                expect=path.expect,
                order=order,
                rng=random.Random(rng.getrandbits(64)),
            )
        )
    return scenarios


async def _finish_anyway(driver: Driver, s: Scenario) -> None:
    """A step failed (its violation is recorded): still wait for the end, so the run counts it. A workflow
    whose task fails on nondeterminism never moves again, so waiting for it would only burn the timeout."""
    if s.finished or any("Nondeterminism" in v for v in s.violations):
        return
    if s.expect.entity == "activation" and s.activation_id is not None:
        check_activation(s, await driver.activation_outcome(s))
    elif s.complaint_id is not None:
        check_complaint(s, await driver.complaint_outcome(s))


async def chaos(options: Options) -> Summary:
    workdir = options.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    if any(workdir.iterdir()):
        raise SystemExit(f"{workdir} is not empty: a chaos run checks every row, so it needs a fresh one")
    async with people(workdir) as folks:
        return await _run(options, workdir, folks)


async def _run(options: Options, workdir: Path, folks: People) -> Summary:
    say = Log(workdir / "chaos.log")
    rng = random.Random(options.seed)
    say(f"chaos run: {options.complaints} scenarios, seed {options.seed}, work dir {workdir}")

    vault_keys = VaultKeyring.generate("vault1").spec()
    payload_keys = PayloadKeyring.generate("payload1").spec()
    keys = workdir / "keys.env"  # throwaway keys, kept to decode the run's histories afterwards
    keys.touch(mode=0o600)
    keys.write_text(f"REFUND_DESK_VAULT_KEYS={vault_keys}\nREFUND_DESK_PAYLOAD_KEYS={payload_keys}\n")
    os.environ["REFUND_DESK_PAYLOAD_KEYS"] = payload_keys  # connect() reads it, as the worker's does
    database_url = f"sqlite+aiosqlite:///{workdir / 'ledger.db'}"
    await upgrade_url(database_url)

    server = DevServer(db_file=workdir / "temporal.db", port=free_port(), log=workdir / "temporal.log")
    queue = f"chaos-{secrets.token_hex(4)}"
    worker = WorkerProcess(
        environment={
            "TEMPORAL_ADDRESS": server.address,
            "TEMPORAL_NAMESPACE": "default",
            "REFUND_DESK_TASK_QUEUE": queue,
            "DATABASE_URL": database_url,
            "REFUND_DESK_VAULT_KEYS": vault_keys,
            "REFUND_DESK_PAYLOAD_KEYS": payload_keys,
            **folks.environment(),
        },
        log=workdir / "worker.log",
    )
    supervisor = Supervisor(
        server,
        worker,
        random.Random(rng.getrandbits(64)),
        options.kill_every,
        say,
        server_signal=options.server_signal,
    )
    ledger = Ledger.connect(database_url)
    began = time.monotonic()
    try:
        server.start()
        await server.ready()
        say(f"dev server up on {server.address}")
        worker.start()
        client = await connect(TemporalSettings(address=server.address, task_queue=queue))
        desk = ComplaintDesk(
            client=client,
            ledger=ledger,
            keyring=VaultKeyring.parse(vault_keys),
            task_queue=queue,
            patience=timedelta(seconds=options.patience),
        )
        await folks.subscribe(ledger, desk.keyring)
        driver = Driver(desk, duplicate_rate=options.duplicates)
        scenarios = plan(options, rng)
        queries = RandomQueries(
            client,
            options.queries_per_second,
            timedelta(seconds=options.query_timeout),
            random.Random(rng.getrandbits(64)),  # drawn after the plan, so a seed plans as it always did
            kills=lambda: supervisor.kills,
        )
        timed_out = await _drive(options, driver, scenarios, supervisor, say, queries)
        elapsed = time.monotonic() - began
        say("checking the ledger and Temporal")
        violations = [v for s in scenarios for v in s.violations]
        found, figures = await ledger_violations(ledger, scenarios)
        violations += found
        started_workflows = sum(1 for s in scenarios if s.workflow_id is not None)
        violations += await temporal_violations(client, started_workflows, workdir / "histories")
        continuing = sum(s.finished for s in scenarios if s.kind == "defect_continued_as_new")
        continued, found = await runs_continued(client, continuing)
        violations += found
        say("replaying every history")
        replayed, found = await replay_violations(
            client,
            queue,
            [s.workflow_id for s in scenarios if s.workflow_id is not None],
            data_converter=encrypting_converter(PayloadKeyring.parse(payload_keys)),
            lanes=options.replay_lanes,
            histories=workdir / "histories",
        )
        violations += found
        say(f"{replayed.replayed} histories replayed in {replayed.seconds} s, {replayed.unreplayable} failed")
        say("waiting for the outbox to empty")
        violations += await folks.settle(ledger, within=120)
        summary = _summary(options, scenarios, figures, driver, supervisor, elapsed, timed_out, violations)
        summary.runs_continued_as_new = continued
        summary.notices = folks.figures
        _add_replay(summary, replayed)
        summary.queries = queries.figures()
        summary.query_failures = dict(queries.failed.most_common())
        summary.query_failure_examples = queries.examples
    finally:
        await worker.stop()
        await server.stop()
        await ledger.close()
    return summary


def _add_replay(summary: Summary, replayed: ReplayFigures) -> None:
    summary.histories_replayed = replayed.replayed
    summary.unreplayable = replayed.unreplayable
    summary.histories_by_status = replayed.by_status
    summary.replay_seconds = replayed.seconds


async def _drive(
    options: Options,
    driver: Driver,
    scenarios: list[Scenario],
    supervisor: Supervisor,
    say: Log,
    queries: RandomQueries,
) -> bool:
    """Run every scenario under the supervisor's chaos and the random queries; True if the timeout cut the
    run short."""
    windows = Windows(short=timedelta(seconds=options.short), long=timedelta(seconds=options.long))
    gate = asyncio.Semaphore(options.concurrency)
    ended = 0
    middle = (len(scenarios) + 1) // 2

    async def one(s: Scenario) -> None:
        nonlocal ended
        async with gate:
            try:
                await PATH_BY_NAME[s.kind].drive(driver, s, windows)
            except StepFailed:
                await _finish_anyway(driver, s)
            except Exception as err:  # a driver bug or an error nobody expected: the scenario's violation
                s.violation(f"driver error {type(err).__name__}: {err}")
                await _finish_anyway(driver, s)
        ended += 1
        if options.server_restart and ended >= middle:
            supervisor.restart_server_soon()

    async def progress() -> None:
        while True:
            await asyncio.sleep(10)
            started = sum(s.started for s in scenarios)
            finished = sum(s.finished for s in scenarios)
            say(
                f"started {started}, finished {finished}, kills {supervisor.kills}, "
                f"server restarts {supervisor.server_restarts}, retries {sum(driver.transient.values())}, "
                f"queries answered {queries.answered} of {queries.sent}"
            )

    stop = asyncio.Event()
    chaos_task = asyncio.create_task(supervisor.run(stop))
    progress_task = asyncio.create_task(progress())
    queries_task = asyncio.create_task(queries.run(scenarios, stop))
    tasks = [asyncio.create_task(one(s)) for s in scenarios]
    _, pending = await asyncio.wait(tasks, timeout=options.timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if pending:
        say(f"TIMEOUT: {len(pending)} scenarios still running after {options.timeout:.0f} s")
    stop.set()
    progress_task.cancel()
    await asyncio.gather(chaos_task, progress_task, queries_task, return_exceptions=True)
    await supervisor.settle()
    say(f"scenarios done: {sum(s.finished for s in scenarios)} of {len(scenarios)} ended")
    return bool(pending)


def _summary(
    options: Options,
    scenarios: list[Scenario],
    figures: LedgerFigures,
    driver: Driver,
    supervisor: Supervisor,
    elapsed: float,
    timed_out: bool,
    violations: list[str],
) -> Summary:
    faulted = {int(m.group(1)) for v in violations if (m := re.match(r"#(\d+) ", v))}
    """Scenarios any check (the driver's, the ledger's) found at fault."""
    by_kind: dict[str, KindFigures] = {}
    for path in PATHS:
        by_kind[path.name] = KindFigures(rules=path.rules, expected=path.expect.status)
    for s in scenarios:
        k = by_kind[s.kind]
        k.count += 1
        k.started += s.started
        k.finished += s.finished
        k.lost += s.started and not s.finished
        k.as_expected += s.finished and s.index not in faulted and s.final_status == s.expect.status
    started = sum(s.started for s in scenarios)
    finished = sum(s.finished for s in scenarios)
    if timed_out:
        violations.insert(0, f"the run hit its {options.timeout:.0f} s timeout")
    if started != len(scenarios):
        violations.insert(0, f"only {started} of {len(scenarios)} scenarios started")
    if finished != started:
        lost = [s for s in scenarios if s.started and not s.finished]
        detail = "; ".join(f"#{s.index} {s.kind} last error {s.last_error}" for s in lost[:5])
        violations.insert(0, f"{started - finished} scenarios lost (started, never ended): {detail}")
    if supervisor.kills < options.min_kills:
        violations.append(
            f"only {supervisor.kills} worker kills happened, at least {options.min_kills} asked"
        )
    wanted_restarts = 1 if options.server_restart else 0
    if supervisor.server_restarts != wanted_restarts:
        violations.append(f"{supervisor.server_restarts} server restarts, expected {wanted_restarts}")

    def split(entity: str) -> dict[str, int]:
        mine = [s for s in scenarios if s.expect.entity == entity]
        ended = sum(s.finished for s in mine)
        return {
            "started": sum(s.started for s in mine),
            "finished": ended,
            "lost": sum(s.started for s in mine) - ended,
        }

    return Summary(
        seed=options.seed,
        scenarios=len(scenarios),
        started=started,
        finished=finished,
        lost=started - finished,
        complaints=split("complaint"),
        activations=split("activation"),
        by_kind=by_kind,
        refunds=figures.refunds,
        refunded={currency: str(amount) for currency, amount in figures.refunded.items()},
        replacements=figures.replacements,
        max_refunds_per_complaint_or_activation=figures.max_refunds_per_source,
        max_refunds_per_order=figures.max_refunds_per_order,
        max_replacements_per_complaint=figures.max_replacements_per_complaint,
        customers_checked=figures.customers,
        audit_events=figures.events,
        duplicate_requests=driver.duplicates_sent,
        worker_kills=supervisor.kills,
        worker_starts=supervisor.worker.starts,
        worker_exits_by_itself=supervisor.unexpected_worker_exits,
        server_restarts=supervisor.server_restarts,
        server_down_seconds=round(supervisor.server_down_seconds, 1),
        server_signal=supervisor.server_signal,
        transient_errors=dict(Counter(driver.transient).most_common()),
        transient_examples=driver.examples,
        elapsed_seconds=round(elapsed, 1),
        timed_out=timed_out,
        violations=violations,
        workdir=str(options.workdir),
    )


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
        f"worker kills     {summary.worker_kills} (SIGKILL; {summary.worker_starts} worker starts, "
        f"{len(summary.worker_exits_by_itself)} exits by itself)",
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


def _range(text: str) -> tuple[float, float]:
    low, sep, high = text.partition("..")
    try:
        bounds = (float(low), float(high if sep else low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN..MAX seconds") from None
    if not 0 < bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 < MIN <= MAX")
    return bounds


def parse(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--complaints", type=int, default=1000, help="scenarios to drive (complaints and activations)"
    )
    p.add_argument("--seed", type=int, default=None, help="mixes the scenarios and times the kills")
    p.add_argument("--kill-every", type=_range, default=(2.0, 10.0), metavar="MIN..MAX", help="seconds")
    p.add_argument("--min-kills", type=int, default=2, help="fewer worker kills than this is a violation")
    p.add_argument("--no-server-restart", action="store_true", help="skip the dev server's restart")
    p.add_argument(
        "--server-signal", choices=("term", "kill"), default="kill", help="how the restart stops the server"
    )
    p.add_argument("--timeout", type=float, default=1200, help="seconds for the whole drive; then lost")
    p.add_argument("--concurrency", type=int, default=200, help="scenarios in flight at once")
    p.add_argument("--patience", type=float, default=PATIENCE.total_seconds(), help="seconds per desk call")
    p.add_argument("--duplicates", type=float, default=0.1, help="share of requests sent twice at once")
    p.add_argument("--short", type=float, default=4.0, help="seconds of a window the scenario waits out")
    p.add_argument("--long", type=float, default=300.0, help="seconds of a window the driver must beat")
    p.add_argument(
        "--queries-per-second",
        type=float,
        default=10.0,
        help="state queries sent at random to live workflows during the run (0: none)",
    )
    p.add_argument("--query-timeout", type=float, default=5.0, help="rpc timeout of each random query, s")
    p.add_argument("--replay-lanes", type=int, default=4, help="histories replayed at once at the end")
    p.add_argument("--workdir", type=Path, default=None, help="empty or new directory (default: a temp one)")
    p.add_argument("--json", type=Path, default=None, help="where to write the summary (WORKDIR/chaos.json)")
    a = p.parse_args(argv)
    options = Options(
        complaints=a.complaints,
        seed=a.seed if a.seed is not None else random.randrange(1 << 31),
        kill_every=a.kill_every,
        min_kills=a.min_kills,
        server_restart=not a.no_server_restart,
        server_signal=a.server_signal,
        timeout=a.timeout,
        concurrency=a.concurrency,
        patience=a.patience,
        duplicates=a.duplicates,
        short=a.short,
        long=a.long,
        queries_per_second=a.queries_per_second,
        query_timeout=a.query_timeout,
        replay_lanes=a.replay_lanes,
        json_path=a.json,
    )
    if a.workdir is not None:
        options.workdir = a.workdir
    return options


def _jsonable(summary: Summary) -> dict[str, Any]:
    return asdict(summary)


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    summary = asyncio.run(chaos(options))
    print(render(summary), flush=True)
    path = options.json_path or options.workdir / "chaos.json"
    path.write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    print(f"summary: {path}", flush=True)
    return 1 if summary.violations else 0


if __name__ == "__main__":
    sys.exit(main())
