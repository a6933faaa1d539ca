"""The chaos run: complaints and activations driven to their ends while the worker is SIGKILLed at random
and the Temporal dev server is stopped and restarted once, then checked for lost work and double money.

    .venv/bin/python -m bench.chaos [--complaints 1000] [--seed S] [--kill-every 2..10] [--timeout 1200]
                                    [--server-signal term|kill] [--queries-per-second 10]
                                    [--scaled | --ledger sqlite|postgresql --workers N --apis N]
                                    [--api-kill-every 5..15]

Everything runs on loopback under a work directory of its own (the dev server's `temporal.db`, the SQLite
ledger, the processes' logs, `chaos.log` and the summary `chaos.json`), on ports picked free at start. The
run is bounded by `--timeout`: whatever has not ended by then counts as lost, and the run fails saying so.
Exit status 0 when every check holds, 1 on any violation.

`--scaled` runs it on a deployment's shape (`bench.deployment`): the ledger on a throwaway PostgreSQL
cluster, three workers on one task queue, and API processes (`refund-desk serve`, two for each of the three
policies the scenarios file under) that the driver talks to over HTTP (`bench.http_desk`), an idempotency
key on every POST; the supervisor then also SIGKILLs a random API process every `--api-kill-every` seconds
and starts it again after a short pause, and a request that loses its answer is sent again, with its key,
to another process. The checks are the same.

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

from bench.chaos_report import KindFigures, Summary, render
from bench.checks import (
    LedgerFigures,
    ReplayFigures,
    ledger_violations,
    replay_violations,
    runs_continued,
    temporal_violations,
)
from bench.deployment import SCALED, Deployment, Shape, deployed
from bench.driver import PATIENCE, Driver, RandomQueries, Scenario, StepFailed
from bench.notices import People, people
from bench.scenarios import PATH_BY_NAME, PATHS, PROFILES, Windows, check_activation, check_complaint
from bench.supervisor import Supervisor
from policy.models import Money, Order, Product, ProductKind
from starter.desk.codec import PayloadKeyring, encrypting_converter

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
    reports: float = 0.3
    short: float = 4.0
    long: float = 300.0
    queries_per_second: float = 10.0
    query_timeout: float = 5.0
    replay_lanes: int = 4
    shape: Shape = field(default_factory=Shape)
    api_kill_every: tuple[float, float] = (5.0, 15.0)
    min_api_kills: int = 2
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="chaos-")))
    json_path: Path | None = None


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
    shape = options.shape
    say(
        f"deployment: ledger {shape.ledger}, {shape.workers} worker(s), "
        f"{shape.api_processes or 'no'} API process(es)"
    )
    chaos_rng = random.Random(rng.getrandbits(64))  # drawn first, so a seed kills as it always did
    windows = Windows(
        short=timedelta(seconds=options.short),
        long=timedelta(seconds=options.long),
        profiles=shape.apis > 0,
    )
    async with deployed(shape, workdir, folks, windows, options.patience, rng) as d:
        say(f"dev server up on {d.server.address}" + (", API processes healthy" if d.apis else ""))
        began = time.monotonic()
        supervisor = Supervisor(
            d.server,
            d.workers,
            chaos_rng,
            options.kill_every,
            say,
            apis=d.apis,
            api_kill_every=options.api_kill_every,
            server_signal=options.server_signal,
        )
        await folks.subscribe(d.ledger, d.desk.keyring)
        driver = Driver(d.desk, duplicate_rate=options.duplicates, report_rate=options.reports)
        scenarios = plan(options, rng)
        queries = RandomQueries(
            d.client,
            options.queries_per_second,
            timedelta(seconds=options.query_timeout),
            random.Random(rng.getrandbits(64)),  # drawn after the plan, so a seed plans as it always did
            kills=lambda: supervisor.kills,
        )
        timed_out = await _drive(options, windows, driver, scenarios, supervisor, say, queries)
        elapsed = time.monotonic() - began
        violations, figures, continued, replayed = await _check(options, d, scenarios, say)
        say("waiting for the outbox to empty")
        violations += await folks.settle(d.ledger, within=120)
        summary = _summary(options, scenarios, figures, driver, supervisor, elapsed, timed_out, violations)
        summary.runs_continued_as_new = continued
        summary.notices = folks.figures
        _add_replay(summary, replayed)
        summary.queries = queries.figures()
        summary.query_failures = dict(queries.failed.most_common())
        summary.query_failure_examples = queries.examples
        _add_deployment(summary, d, supervisor)
    return summary


async def _check(
    options: Options, d: Deployment, scenarios: list[Scenario], say: Log
) -> tuple[list[str], LedgerFigures, int, ReplayFigures]:
    """The checks of the ledger and of Temporal, and the replay of every history: the violations, the
    ledger's figures, the runs continued as new, and the replay's figures."""
    say("checking the ledger and Temporal")
    violations = [v for s in scenarios for v in s.violations]
    found, figures = await ledger_violations(d.ledger, scenarios)
    violations += found
    histories = options.workdir / "histories"
    started_workflows = sum(1 for s in scenarios if s.workflow_id is not None)
    violations += await temporal_violations(d.client, started_workflows, histories)
    continuing = sum(s.finished for s in scenarios if s.kind == "defect_continued_as_new")
    continued, found = await runs_continued(d.client, continuing)
    violations += found
    say("replaying every history")
    replayed, found = await replay_violations(
        d.client,
        d.queue,
        [s.workflow_id for s in scenarios if s.workflow_id is not None],
        data_converter=encrypting_converter(PayloadKeyring.parse(d.payload_keys)),
        lanes=options.replay_lanes,
        histories=histories,
    )
    violations += found
    say(f"{replayed.replayed} histories replayed in {replayed.seconds} s, {replayed.unreplayable} failed")
    return violations, figures, continued, replayed


def _add_deployment(summary: Summary, d: Deployment, supervisor: Supervisor) -> None:
    summary.deployment = {
        "ledger": d.shape.ledger,
        "workers": d.shape.workers,
        "api_processes": len(d.apis),
        "api_policies": list(PROFILES) if d.apis else [],
    }
    summary.api_kills = supervisor.api_kills
    summary.api_starts = supervisor.api_starts
    summary.api_exits_by_itself = supervisor.unexpected_api_exits
    summary.http = d.pool.figures.as_dict() if d.pool is not None else {}


def _add_replay(summary: Summary, replayed: ReplayFigures) -> None:
    summary.histories_replayed = replayed.replayed
    summary.unreplayable = replayed.unreplayable
    summary.histories_by_status = replayed.by_status
    summary.replay_seconds = replayed.seconds


async def _drive(
    options: Options,
    windows: Windows,
    driver: Driver,
    scenarios: list[Scenario],
    supervisor: Supervisor,
    say: Log,
    queries: RandomQueries,
) -> bool:
    """Run every scenario under the supervisor's chaos and the random queries; True if the timeout cut the
    run short."""
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
            api_kills = f"API kills {supervisor.api_kills}, " if supervisor.apis else ""
            say(
                f"started {started}, finished {finished}, kills {supervisor.kills}, {api_kills}"
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
    if supervisor.apis and supervisor.api_kills < options.min_api_kills:
        violations.append(
            f"only {supervisor.api_kills} API kills happened, at least {options.min_api_kills} asked"
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
        reports=asdict(driver.reports),
        worker_kills=supervisor.kills,
        worker_starts=supervisor.worker_starts,
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
    p.add_argument(
        "--reports",
        type=float,
        default=0.3,
        help="share of fixes, access answers and withdrawals sent as signals (Prefer: respond-async)",
    )
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
    _deployment_arguments(p)
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
        reports=a.reports,
        short=a.short,
        long=a.long,
        queries_per_second=a.queries_per_second,
        query_timeout=a.query_timeout,
        replay_lanes=a.replay_lanes,
        json_path=a.json,
        shape=_shape(a),
        api_kill_every=a.api_kill_every,
        min_api_kills=a.min_api_kills,
    )
    if a.workdir is not None:
        options.workdir = a.workdir
    return options


def _deployment_arguments(p: argparse.ArgumentParser) -> None:
    scaled = f"--ledger {SCALED.ledger} --workers {SCALED.workers} --apis {SCALED.apis}"
    p.add_argument("--scaled", action="store_true", help=f"the scaled deployment: {scaled}")
    p.add_argument("--ledger", choices=("sqlite", "postgresql"), default=None, help="default: sqlite")
    p.add_argument("--workers", type=int, default=None, help="`python worker.py` processes (default: 1)")
    p.add_argument(
        "--apis",
        type=int,
        default=None,
        help=f"API processes for each of the {len(PROFILES)} policies the scenarios file under, the driver "
        "talking HTTP to them (default: 0, the desk in the run's process)",
    )
    p.add_argument("--api-kill-every", type=_range, default=(5.0, 15.0), metavar="MIN..MAX", help="seconds")
    p.add_argument("--min-api-kills", type=int, default=2, help="fewer API kills is a violation")


def _shape(a: argparse.Namespace) -> Shape:
    """`--scaled`'s shape, or the single one, with what `--ledger`, `--workers` and `--apis` say instead."""
    base = SCALED if a.scaled else Shape()
    shape = Shape(
        ledger=a.ledger or base.ledger,
        workers=base.workers if a.workers is None else a.workers,
        apis=base.apis if a.apis is None else a.apis,
    )
    if shape.workers < 1 or shape.apis < 0:
        raise SystemExit("--workers must be at least 1 and --apis at least 0")
    return shape


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
