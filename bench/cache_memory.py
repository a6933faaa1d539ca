"""What one complaint in Temporal's sticky cache costs the worker's memory, measured on a real worker.

    .venv/bin/python -m bench.cache_memory [--complaints 1000] [--warm 100] [--concurrency 50]

1. `python worker.py` files `--complaints` defect complaints, left waiting on their 5-day deadlines; it
   stops.
2. A fresh `python worker.py` with a sticky cache that holds them all answers a query on the first `--warm`
   (each is replayed once and stays cached; the imports, pools and the converter's caches are warm after
   them) and its RSS is read; then a query on each of the others, which puts it in the cache, and its RSS is
   read again. The difference over the others is what one cached complaint holds.
3. The last 1,000 are queried again: from the cache now, no replay.

`bench.open_complaints` runs the same measurement (`fill_cache`) as its third phase, at the scale of its goal.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from sqlalchemy import func, select
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from bench.processes import WorkerProcess
from bench.report import Row, latency_ms, report, rss_mib
from bench.stage import Stage, new_queue, stage
from bench.workload import BACKEND, DESCRIPTION, bounded, order, timed
from ledger.schema import NotificationRow
from policy.ids import workflow_id_of
from policy.models import ComplaintKind
from starter.desk.settings import TemporalSettings
from workflows.common import ComplaintWorkflow

GOAL_OPEN = 10_000
GOAL_WORKER_MIB = 1024
ATTEMPTS = 5
"""Times a complaint is queried before its failure fails the run."""
AGAIN = 1_000
"""Complaints queried a second time, from the cache (the last ones filled)."""
SETTLE_SECONDS = 2.0
"""Pause before reading a worker's RSS: the last queries' tasks done, not in flight."""


@dataclass
class CacheFill:
    """A worker with a sticky cache of `cached`, its memory after `warm` complaints were queried into the
    cache and after all `complaints` were."""

    cached: int
    complaints: int
    warm: int
    rss_warm: dict[str, float] = field(default_factory=dict)
    rss_filled: dict[str, float] = field(default_factory=dict)
    into_cache: dict[str, float] = field(default_factory=dict)
    """Queries that replayed a complaint into the cache (all but the warm ones), their latency."""
    from_cache: dict[str, float] = field(default_factory=dict)
    """Up to `AGAIN` of them queried again, answered from the cache."""
    retried: int = 0
    """Queries asked again after a failed attempt (`Queried.retried`), all three rounds."""

    @property
    def per_complaint_kib(self) -> float:
        """RSS added by each complaint queried into the cache after the warm ones (0 if none were); a cache
        smaller than the complaints holds only as many."""
        added = min(self.cached, self.complaints) - self.warm
        if added <= 0 or "rss_mib" not in self.rss_warm or "rss_mib" not in self.rss_filled:
            return 0.0
        return round((self.rss_filled["rss_mib"] - self.rss_warm["rss_mib"]) * 1024 / added, 1)

    def projected_mib(self, open_complaints: int) -> float:
        """The worker's RSS with `open_complaints` cached, from this fill's base and per-complaint cost."""
        base = self.rss_warm.get("rss_mib", 0.0) - self.per_complaint_kib * self.warm / 1024
        return round(base + self.per_complaint_kib * open_complaints / 1024, 1)


@dataclass
class Queried:
    latencies: list[float] = field(default_factory=list)
    """Each answered query's latency, in seconds (its last attempt)."""
    retried: int = 0
    """Attempts that failed and were asked again (a replay that overran the SDK's 2 s deadlock detection
    on a loaded machine fails the query, not the workflow)."""


async def query_each(client: Client, complaint_ids: Sequence[str], concurrency: int) -> Queried:
    """Ask each complaint's workflow for its state (a Temporal query: a worker without the complaint in its
    cache replays its history to answer, and keeps it cached if it can), up to `ATTEMPTS` times each. The
    desk's reads do not ask the workflows: they read the ledger."""
    queried = Queried()

    async def ask(complaint_id: str) -> None:
        handle = client.get_workflow_handle(workflow_id_of(complaint_id))
        for attempt in range(1, ATTEMPTS + 1):
            try:
                await timed(handle.query(ComplaintWorkflow.state), queried.latencies)
                return
            except (WorkflowQueryFailedError, RPCError):
                if attempt == ATTEMPTS:
                    raise
                queried.retried += 1
                await asyncio.sleep(1)

    await bounded(concurrency, [lambda cid=cid: ask(cid) for cid in complaint_ids])  # type: ignore[misc]
    return queried


def cached_worker(
    st: Stage, queue: str, cached: int, arguments: tuple[str, ...] = ("worker.py",)
) -> WorkerProcess:
    """`python worker.py` (or another worker program, `arguments`) on `queue` with a sticky cache of
    `cached`, started."""
    worker = WorkerProcess(
        environment=st.environment(queue, workflow_cache=cached),
        log=st.workdir / f"worker-{queue}-cached-{cached}.log",
        arguments=arguments,
    )
    worker.start()
    st.workers.append(worker)
    return worker


async def fill_cache(
    st: Stage,
    queue: str,
    complaint_ids: Sequence[str],
    *,
    cached: int,
    warm: int,
    concurrency: int,
    arguments: tuple[str, ...] = ("worker.py",),
) -> tuple[CacheFill, WorkerProcess]:
    """Start a worker with a cache of `cached` on `queue` (no other worker may poll it), query the first
    `warm` complaints into its cache and read its RSS, then the others and read it again, then query those
    again from the cache. The worker is left running (the caller reads more, then stops it)."""
    worker = cached_worker(st, queue, cached, arguments)
    warm = min(warm, len(complaint_ids), cached)
    fill = CacheFill(cached=cached, complaints=len(complaint_ids), warm=warm)
    first = await query_each(st.client, complaint_ids[:warm], concurrency)
    await asyncio.sleep(SETTLE_SECONDS)
    fill.rss_warm = rss_mib(worker.pid)
    into = await query_each(st.client, complaint_ids[warm:], concurrency)
    await asyncio.sleep(SETTLE_SECONDS)
    fill.rss_filled = rss_mib(worker.pid)
    again = await query_each(st.client, complaint_ids[warm:][-AGAIN:], concurrency)
    fill.into_cache, fill.from_cache = latency_ms(into.latencies), latency_ms(again.latencies)
    fill.retried = first.retried + into.retried + again.retried
    return fill, worker


async def file_waiting(
    st: Stage, queue: str, count: int, concurrency: int, deadline: float
) -> tuple[list[str], float]:
    """File `count` defect complaints through the desk on `queue` (a worker must poll it) and wait until
    each has done its filing's work (its filing notice in the outbox) and waits on its deadline; their ids,
    and the seconds until the last filing call returned."""
    desk = st.desk(queue)
    began = time.monotonic()

    async def file(index: int) -> str:
        o = order(queue, index)
        await desk.record_order(o)
        return (await desk.file(o, ComplaintKind.MAJOR_DEFECT, DESCRIPTION, BACKEND)).complaint_id

    ids = await bounded(concurrency, [lambda i=i: file(i) for i in range(count)])  # type: ignore[misc]
    filed_seconds = time.monotonic() - began
    while await filed_notices(st, queue) < count:
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the complaints to settle")
        await asyncio.sleep(0.5)
    return ids, filed_seconds


async def filed_notices(st: Stage, queue: str) -> int:
    """Complaints on `queue` whose filing notice (the last thing filing does) is in the outbox."""
    async with st.ledger.engine.connect() as conn:
        return int(
            await conn.scalar(
                select(func.count())
                .select_from(NotificationRow)
                .where(
                    NotificationRow.template == "complaint_filed",
                    NotificationRow.complaint_id.like(f"{queue}-%"),
                )
            )
            or 0
        )


@dataclass
class Options:
    complaints: int = 1_000
    warm: int = 100
    concurrency: int = 50
    timeout: float = 1800.0


async def bench(options: Options) -> int:
    deadline = time.monotonic() + options.timeout
    default_cache = TemporalSettings().workflow_cache
    async with stage("cache_memory") as st:
        queue = new_queue("cache")
        filer = st.start_worker(queue, workflow_cache=0)
        began = time.monotonic()
        ids, _ = await file_waiting(st, queue, options.complaints, options.concurrency, deadline)
        print(f"{len(ids)} complaints filed and waiting after {time.monotonic() - began:.0f} s", flush=True)
        await filer.stop()
        fill, worker = await fill_cache(
            st,
            queue,
            ids,
            cached=options.complaints,
            warm=options.warm,
            concurrency=options.concurrency,
        )
        await worker.stop()

    projected = fill.projected_mib(GOAL_OPEN)
    at_default = fill.projected_mib(min(GOAL_OPEN, default_cache))
    rows = [
        Row("complaints cached (warm first)", f"{fill.complaints} ({fill.warm})"),
        Row(f"worker RSS, {fill.warm} cached", f"{fill.rss_warm.get('rss_mib')} MiB"),
        Row(
            f"worker RSS, all {fill.complaints} cached",
            f"{fill.rss_filled.get('rss_mib')} MiB (peak {fill.rss_filled.get('peak_rss_mib')})",
        ),
        Row("per cached complaint", f"{fill.per_complaint_kib} KiB"),
        Row(f"projected: {GOAL_OPEN:,} cached", f"{projected} MiB"),
        Row(
            f"projected: {GOAL_OPEN:,} open, the default cache ({default_cache:,}) full",
            f"{at_default} MiB",
            f"< {GOAL_WORKER_MIB} MiB",
        ),
        Row(
            "query into the cache (a replay): p50 / p99",
            f"{fill.into_cache.get('p50_ms')} / {fill.into_cache.get('p99_ms')} ms",
        ),
        Row(
            "query from the cache: p50 / p99",
            f"{fill.from_cache.get('p50_ms')} / {fill.from_cache.get('p99_ms')} ms",
        ),
        Row("queries asked again after a failed attempt", f"{fill.retried}"),
    ]
    report(
        "cache_memory",
        f"The sticky cache's memory: {options.complaints} complaints cached",
        rows,
        {
            "options": asdict(options),
            "fill": asdict(fill),
            "per_complaint_kib": fill.per_complaint_kib,
            "default_cache": default_cache,
            "projected_mib": {"all_10000_cached": projected, "default_cache_full": at_default},
        },
    )
    return 0 if at_default < GOAL_WORKER_MIB else 1


def parse(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.cache_memory", description=__doc__.split("\n\n")[0])
    d = Options()
    p.add_argument("--complaints", type=int, default=d.complaints, help="complaints filed, then cached")
    p.add_argument("--warm", type=int, default=d.warm, help="cached before the first reading")
    p.add_argument("--concurrency", type=int, default=d.concurrency, help="filings (and queries) at once")
    p.add_argument("--timeout", type=float, default=d.timeout, help="seconds for the filing")
    return Options(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(bench(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
