"""The issue's targets, measured in one run on one dev server, against the strongest baseline: bare Temporal
as its users get it (`bench.baseline`, the SDK's defaults, its sticky cache on).

    .venv/bin/python -m bench.targets [--lifecycles 200] [--concurrency 20] [--complaints 200]
                                      [--filing-concurrency 50] [--gets 2000] [--get-concurrency 50]
                                      [--deadline 120] [--workflow-cache N] [--timeout 1800] [--keep]

Three processes on one dev server and one SQLite ledger: the project's `python worker.py` as deployed (its
settings' defaults; `--workflow-cache` sets its sticky cache), the bare worker `python -m bench.baseline`
(the SDK's defaults) on a task queue of its own, and `refund-desk serve` (uvicorn, `python -m starter.cli
serve` as `make run` starts it) on the project's queue; the bench process drives them over loopback. Its
HTTP client is `Lane`, one keep-alive HTTP/1.1 connection per caller in flight on asyncio's streams: a
request costs it a few tens of microseconds of CPU where httpx costs milliseconds, which on two cores would
be taken from the API it measures. Four phases, the bare side first in each, the system settled (every
worker idle, every complaint filed projected) before each side:

1. Lifecycles, bench 1's machinery (`bench.lifecycle.measure`): `--lifecycles` defect complaints through
   `ComplaintDesk` (file, review, access request and grant, the deadline, the remedy window, the default
   refund) against as many bare workflows with the same activities, updates and timers, `--concurrency` in
   flight; lifecycles per second from the first close to the last. Target: project >= 0.6x bare.
2. Filing: `--complaints` `POST /v1/complaints` (the backend, on orders recorded beforehand, untimed)
   against as many bare starts (`Client.start_workflow`, the default converter, the plan's first
   activities to run), `--filing-concurrency` in flight each (a closed loop); calls answered per second of
   the loop's wall time. Target: filing >= 0.6x the bare start rate.
3. Reads: `--gets` `GET /v1/complaints/{id}` (support) at `--get-concurrency` in flight over the complaints
   of phase 2, all open (the API files under the policy in force: windows of days), in shuffled passes.
   Targets: p50 <= 15 ms, p99 <= 100 ms.
4. Updates: each complaint of phase 2 gets three updates through the API, one after the other (support's
   `POST .../review` and `.../access-request`, the customer's `POST .../access` granting it), and each bare
   workflow of phase 2 its three `execute_update` through the client, `--concurrency` complaints (or
   workflows) in flight on each side. Target: the API's round trip p50 <= 2x the bare update's.

Each caller in flight has a token of its own (a support person, a shop's backend per lane, each customer its
own): the API's per-caller rate limit (200/s by default) is for one caller, and 50 readers are 50 callers.
A few of each call are sent first to warm up (connections, code paths), untimed. The CPU each process used
in each phase is in the JSON (what ran out first). The other two targets have benchmarks of their own:
worker RSS < 1 GiB with 10,000 complaints open (bench 2, `bench.open_complaints`) and a time-skipping
lifecycle <= 100 ms (bench 5, `bench.time_skipping`).

A failed request, a complaint not refunded exactly once as planned, or running out of `--timeout` fails the
run (exit 1); a target not met does not: it is a finding, printed NOT MET. The figures go to
`.data/bench/targets.json` (`targets-cache<N>.json` with `--workflow-cache`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import Client

from bench.api import (
    CpuClock,
    Failed,
    bearer,
    drive_lanes,
    process_cpu,
    reads,
    record_orders,
    start_api,
)
from bench.baseline import BareLifecycle, BarePlan, Timer, bare_cache
from bench.lifecycle import Measured, caches, measure
from bench.lifecycle import Options as LifecycleOptions
from bench.processes import WorkerProcess
from bench.report import Row, against, at_least, at_most, latency_ms, memory, report, rss_mib
from bench.stage import Stage, deployed_cache, new_queue, stage
from policy.models import Role

T = TypeVar("T")

NAME = "targets"

LIFECYCLE_RATIO = 0.6
UPDATE_P50_RATIO = 2.0
GET_P50_MS = 15.0
GET_P99_MS = 100.0
FILING_RATIO = 0.6

WARM = 5
"""Complaints (and bare workflows) filed, read and updated before each measured phase, untimed."""
OPEN_FOR = timedelta(days=5)
"""The bare workflows of phases 2-4 wait this long after their updates, as the complaints filed through the
API wait on their deadlines: nothing of either ends during the run."""

DESCRIPTION = "The licensing module crashes on every request since the last update; logs are attached."
REVIEW = {"decision": "approve", "note": "benchmark"}
ACCESS_REQUEST = {"scope": "ssh to the web host", "reason": "to reproduce the crash"}
GRANT = {
    "grant": True,
    "credentials": {"host": "bench.example.net", "username": "deploy", "secret": "bench-secret"},
}
UPDATES: list[tuple[str, dict[str, Any]]] = [
    ("review", REVIEW),
    ("access-request", ACCESS_REQUEST),
    ("access", GRANT),
]
"""Phase 4's updates of a complaint, in order: `POST /v1/complaints/{id}/<path>` with the body; the last one
is the customer's, the others support's."""


@dataclass
class Options:
    lifecycles: int = 200
    concurrency: int = 20
    """Lifecycles in flight in phase 1, complaints (and bare workflows) being updated in phase 4."""
    complaints: int = 200
    """Filed in phase 2 (and as many bare starts), read in 3, updated in 4."""
    filing_concurrency: int = 50
    gets: int = 2000
    get_concurrency: int = 50
    deadline: float = 120.0
    """Phase 1's rectification window, seconds (bench 1's default)."""
    choice_window: float = 2.0
    workflow_cache: int | None = None
    """The project worker's sticky cache; None: as deployed."""
    timeout: float = 1800.0
    seed: int = 0
    keep: bool = False


@dataclass
class Calls:
    """One side's calls of one phase: their latencies, failures and wall time, and the CPU each process
    used meanwhile."""

    wall_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall_seconds if self.wall_seconds else math.nan

    def p(self, percentile: str) -> float:
        value: float = latency_ms(self.latencies).get(f"{percentile}_ms", math.nan)
        return value

    def figures(self) -> dict[str, Any]:
        wall = self.wall_seconds or 1.0
        return {
            "calls": len(self.latencies),
            "wall_seconds": round(self.wall_seconds, 3),
            "per_second": round(self.rate, 1),
            "latency": latency_ms(self.latencies),
            "errors": dict(self.errors),
            "error_examples": self.examples,
            "cores_busy": {name: round(used / wall, 2) for name, used in self.cpu_seconds.items()},
        }


class RunFailed(Exception):
    """The run cannot go on: what is measured so far is reported, and the run fails."""


@dataclass
class Target:
    name: str
    value: float
    goal: str
    met: bool | None
    """None: not measured (the phase did not run to its end)."""


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


# ------------------------------------------------------------------------------------------------ HTTP


class Lane:
    """One keep-alive HTTP/1.1 connection to the API, for one caller that sends a request, reads the whole
    answer, then sends the next. The API answers JSON with a Content-Length; anything else is a failure.
    A connection the API has closed meanwhile (uvicorn closes one idle for 5 s) is opened again before the
    request is sent, and a request the closing connection lost before any answer came is sent once more on a
    new one: a server that closes an idle connection has not read a request from it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.opened = 0

    async def call(
        self, method: str, path: str, headers: Mapping[str, str], body: object = None
    ) -> tuple[int, bytes]:
        """The answer's status and body."""
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}", "accept: application/json"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None:
            lines += ["content-type: application/json", f"content-length: {len(payload)}"]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
        for attempt in (1, 2):
            reused = self.reader is not None and not self.reader.at_eof()
            if not reused:
                await self.open()
            assert self.reader is not None and self.writer is not None
            try:
                self.writer.write(request)
                await self.writer.drain()
                return await self.answer(self.reader)
            except (ConnectionError, asyncio.IncompleteReadError) as err:
                await self.close()
                nothing_read = not isinstance(err, asyncio.IncompleteReadError) or not err.partial
                if not (reused and nothing_read and attempt == 1):
                    raise Failed("connection lost", f"{method} {path}: {err!r}") from None
        raise AssertionError("unreachable")

    async def answer(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        fields = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if "content-length" not in fields:
            raise Failed("no content-length", f"HTTP {status} without a Content-Length: {fields}")
        body = await reader.readexactly(int(fields["content-length"]))
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def open(self) -> None:
        await self.close()
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.opened += 1

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def expect(answer: tuple[int, bytes], status: int) -> dict[str, Any]:
    """The answer's JSON body if it has `status`, else `Failed` labelled with the status and error code."""
    got, body = answer
    if got != status:
        try:
            code = json.loads(body)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = "?"
        raise Failed(f"HTTP {got} {code}", body[:400].decode(errors="replace"))
    document: dict[str, Any] = json.loads(body)
    return document


# --------------------------------------------------------------------------------------------- the run


@dataclass
class Run:
    st: Stage
    options: Options
    queue: str
    bare_queue: str
    worker: WorkerProcess
    bare_worker: WorkerProcess
    api: WorkerProcess
    host: str
    port: int
    secret: str
    bare_client: Client
    clock: CpuClock
    ttl: timedelta
    tokens: dict[tuple[Role, str], dict[str, str]] = field(default_factory=dict)
    plan: BarePlan | None = None
    lifecycles: Measured | None = None
    filed: list[tuple[str, str]] = field(default_factory=list)
    """(complaint id, customer id) of phase 2's complaints, warm-up ones first."""
    bare_ids: list[str] = field(default_factory=list)
    phases: dict[str, Calls] = field(default_factory=dict)
    lanes: dict[int, Lane] = field(default_factory=dict)

    def lane(self, number: int) -> Lane:
        """The connection of the caller in flight as lane `number` (each lane sends one request at a time)."""
        if number not in self.lanes:
            self.lanes[number] = Lane(self.host, self.port)
        return self.lanes[number]

    async def close(self) -> None:
        for lane in self.lanes.values():
            await lane.close()

    def auth(self, role: Role, sub: str) -> dict[str, str]:
        key = (role, sub)
        if key not in self.tokens:
            self.tokens[key] = bearer(self.secret, role, sub, self.ttl)
        return self.tokens[key]

    async def settle(self, projected: int = 0, seconds: float = 120) -> None:
        """Until the ledger projects `projected` complaints or more and the workers and the API have used
        under a tenth of a core for three ticks of 0.2 s in a row."""
        deadline = time.monotonic() + seconds
        pids = [self.worker.pid, self.bare_worker.pid, self.api.pid]
        last = [process_cpu(pid) for pid in pids]
        quiet = 0
        while quiet < 3:
            if time.monotonic() > deadline:
                raise RunFailed(f"the workers did not settle within {seconds:.0f} s")
            await asyncio.sleep(0.2)
            now = [process_cpu(pid) for pid in pids]
            done = (await self.st.ledger.table_counts(["complaints"]))["complaints"] >= projected
            quiet = quiet + 1 if done and all(b - a < 0.02 for a, b in zip(last, now, strict=True)) else 0
            last = now

    async def warm(self, items: Sequence[T], call: Callable[[T, int], Awaitable[None]]) -> None:
        """Untimed calls before a phase, `WARM` lanes; any failure stops the run (the phase's figures would
        be wrong)."""
        _, _, errors, examples = await drive_lanes(items, call, WARM)
        if errors:
            raise RunFailed(f"warming up failed: {dict(errors)} {examples}")

    async def timed_phase(
        self, name: str, items: Sequence[T], call: Callable[[T, int], Awaitable[None]], concurrency: int
    ) -> Calls:
        """`call(item, lane)` for every item from `concurrency` lanes (a closed loop), as `name`."""
        before = self.clock.read()
        wall, latencies, errors, examples = await drive_lanes(items, call, concurrency)
        calls = Calls(wall, latencies, errors, examples, self.clock.since(before))
        self.phases[name] = calls
        lat = latency_ms(latencies)
        failed = sum(errors.values())
        print(
            f"  {name:<22} {len(items):>5} in {wall:6.1f} s: {calls.rate:7.1f}/s, "
            f"p50 {lat.get('p50_ms', math.nan):7.1f} ms, p99 {lat.get('p99_ms', math.nan):7.1f} ms"
            + (f", {failed} FAILED: {dict(errors)}" if failed else ""),
            flush=True,
        )
        return calls

    # ------------------------------------------------------------------------------------ phase 1

    async def phase_lifecycles(self, deadline: float) -> None:
        o = self.options
        lifecycle_options = LifecycleOptions(
            lifecycles=o.lifecycles,
            concurrency=o.concurrency,
            deadline=o.deadline,
            choice_window=o.choice_window,
            workflow_cache=o.workflow_cache,
            timeout=o.timeout,
        )
        self.lifecycles = await measure(
            self.st,
            lifecycle_options,
            deadline,
            desk=self.st.desk(self.queue),
            project_worker=self.worker,
            bare_queue=self.bare_queue,
            bare_worker=self.bare_worker,
        )
        self.plan = self.lifecycles.plan

    # ------------------------------------------------------------------------------------ phase 2

    def open_plan(self) -> BarePlan:
        """The lifecycle's plan up to its updates, then a wait of days: what a complaint filed through the
        API does meanwhile. A plain start (the issue's bare start rate): where the project files with an
        update, that update's activities run at the start instead, so that the same three updates are left
        on both sides for phase 4."""
        assert self.plan is not None
        plan = self.plan
        with_start = plan.update_with_start and bool(plan.per_update)
        return BarePlan(
            at_start=plan.at_start + (plan.per_update[0] if with_start else 0),
            per_update=list(plan.per_update[1:] if with_start else plan.per_update),
            timers=[Timer(seconds=OPEN_FOR.total_seconds(), then=0)],
        )

    async def start_bare(self, index: str, lane: int) -> None:
        ident = f"bare-open-{self.bare_queue}-{index}"
        await self.bare_client.start_workflow(
            BareLifecycle.run, self.open_plan(), id=ident, task_queue=self.bare_queue
        )
        self.bare_ids.append(ident)

    async def post(self, order_id: str, lane: int) -> None:
        body = {"order_id": order_id, "kind": "major_defect", "description": DESCRIPTION}
        headers = self.auth(Role.BACKEND, f"shop-{lane:02d}")
        answer = expect(await self.lane(lane).call("POST", "/v1/complaints", headers, body), 201)
        self.filed.append((answer["complaint_id"], answer["customer_id"]))

    async def phase_filing(self) -> None:
        o = self.options
        orders = await record_orders(
            self.st.desk(self.queue), f"t{secrets.token_hex(3)}", WARM + o.complaints
        )
        projected = (await self.st.ledger.table_counts(["complaints"]))["complaints"]
        await self.warm([f"w{i}" for i in range(WARM)], self.start_bare)
        await self.settle(projected)
        await self.timed_phase(
            "bare starts", [f"{i:06d}" for i in range(o.complaints)], self.start_bare, o.filing_concurrency
        )
        await self.warm(orders[:WARM], self.post)
        await self.settle(projected + WARM)
        await self.timed_phase("API filing (POST)", orders[WARM:], self.post, o.filing_concurrency)
        await self.settle(projected + len(self.filed))

    # ------------------------------------------------------------------------------------ phase 3

    async def get(self, complaint_id: str, lane: int) -> None:
        headers = self.auth(Role.SUPPORT, f"support-{lane:02d}")
        answer = expect(await self.lane(lane).call("GET", f"/v1/complaints/{complaint_id}", headers), 200)
        if answer["complaint_id"] != complaint_id:
            raise Failed("wrong complaint", f"asked for {complaint_id}, got {answer['complaint_id']}")

    async def phase_reads(self) -> None:
        o = self.options
        pool = [cid for cid, _ in self.filed]
        targets = reads(pool, o.gets, random.Random(o.seed))
        await self.warm(pool[: 4 * WARM], self.get)
        await self.settle()
        await self.timed_phase("API reads (GET)", targets, self.get, o.get_concurrency)

    # ------------------------------------------------------------------------------------ phase 4

    async def update_bare(self, ident: str, into: list[float]) -> None:
        handle = self.bare_client.get_workflow_handle(ident)
        for activities in self.open_plan().per_update:
            began = time.perf_counter()
            await handle.execute_update(BareLifecycle.step, activities)
            into.append(time.perf_counter() - began)

    async def update_api(self, filed: tuple[str, str], lane: int, into: list[float]) -> None:
        complaint_id, customer_id = filed
        support = self.auth(Role.SUPPORT, f"support-{lane:02d}")
        customer = self.auth(Role.CUSTOMER, customer_id)
        for path, body in UPDATES:
            headers = customer if path == "access" else support
            began = time.perf_counter()
            expect(
                await self.lane(lane).call("POST", f"/v1/complaints/{complaint_id}/{path}", headers, body),
                200,
            )
            into.append(time.perf_counter() - began)

    async def updates(
        self, name: str, items: Sequence[Any], one: Callable[[Any, int, list[float]], Awaitable[None]]
    ) -> Calls:
        """Each item's updates one after the other, `--concurrency` items in flight; each update timed."""
        latencies: list[float] = []
        calls = await self.timed_phase(
            name, items, lambda item, lane: one(item, lane, latencies), self.options.concurrency
        )
        calls.latencies = latencies  # each update's round trip, not each item's three
        print(f"  {'':<22} {len(latencies)} updates: p50 {calls.p('p50')} ms, p99 {calls.p('p99')} ms")
        return calls

    async def phase_updates(self) -> None:
        if len(self.open_plan().per_update) != len(UPDATES):
            raise RunFailed(
                f"the bare workflows expect {len(self.open_plan().per_update)} updates after filing, the "
                f"complaints get {len(UPDATES)}: the template is not the lifecycle driven here"
            )
        warm_bare, bare = self.bare_ids[:WARM], self.bare_ids[WARM:]
        warm_filed, filed = self.filed[:WARM], self.filed[WARM:]
        await self.warm(warm_bare, lambda ident, _lane: self.update_bare(ident, []))
        await self.settle()
        await self.updates("bare updates", bare, lambda ident, lane, into: self.update_bare(ident, into))
        await self.warm(warm_filed, lambda filed, lane: self.update_api(filed, lane, []))
        await self.settle()
        await self.updates("API updates", filed, self.update_api)


# ------------------------------------------------------------------------------------------ the report


def targets(run: Run) -> list[Target]:
    """The four targets this run measures, each with its value (NaN where it did not run) and verdict."""
    found: list[Target] = []
    m = run.lifecycles
    lifecycle = m.ratio if m is not None and not m.problems else math.nan
    found.append(
        Target(
            "lifecycle throughput, project / bare",
            lifecycle,
            f">= {LIFECYCLE_RATIO}x",
            at_least(lifecycle, LIFECYCLE_RATIO),
        )
    )
    api, bare = run.phases.get("API updates"), run.phases.get("bare updates")
    update = ratio(api.p("p50"), bare.p("p50")) if api and bare and not api.errors else math.nan
    found.append(
        Target("update p50, API / bare", update, f"<= {UPDATE_P50_RATIO}x", at_most(update, UPDATE_P50_RATIO))
    )
    gets = run.phases.get("API reads (GET)")
    p50 = gets.p("p50") if gets and not gets.errors else math.nan
    p99 = gets.p("p99") if gets and not gets.errors else math.nan
    found.append(Target("GET p50", p50, f"<= {GET_P50_MS:.0f} ms", at_most(p50, GET_P50_MS)))
    found.append(Target("GET p99", p99, f"<= {GET_P99_MS:.0f} ms", at_most(p99, GET_P99_MS)))
    posts, starts = run.phases.get("API filing (POST)"), run.phases.get("bare starts")
    filing = ratio(posts.rate, starts.rate) if posts and starts and not posts.errors else math.nan
    found.append(
        Target("filing rate, API / bare", filing, f">= {FILING_RATIO}x", at_least(filing, FILING_RATIO))
    )
    return found


def per_second(calls: Calls | None) -> str:
    return "-" if calls is None else f"{calls.rate:.1f}/s"


def p50_p99(calls: Calls | None) -> str:
    return "-" if calls is None else f"{calls.p('p50')} / {calls.p('p99')} ms"


def rows_of(
    run: Run, found: list[Target], memories: dict[str, dict[str, float]], failures: list[str]
) -> list[Row]:
    o = run.options
    by_name = {t.name: t for t in found}

    def verdict(name: str, value: str) -> Row:
        t = by_name[name]
        return Row(f"  {name}", value, against(t.goal, t.met))

    m = run.lifecycles
    phases = run.phases
    cache = caches(LifecycleOptions(workflow_cache=o.workflow_cache))
    rows = [
        Row(
            "sticky cache: project / bare",
            f"{cache['project']}{' (as deployed)' if o.workflow_cache is None else ''} / "
            f"{cache['bare']} (the SDK's default)",
        ),
        Row(
            f"1. lifecycles/s, first to last close ({o.lifecycles} each, {o.concurrency} in flight)",
            "-" if m is None else f"project {m.project.steady():.1f}, bare {m.bare.steady():.1f}",
        ),
        verdict(
            "lifecycle throughput, project / bare",
            fmt_ratio(by_name["lifecycle throughput, project / bare"].value),
        ),
    ]
    if m is not None:
        p, b = latency_ms(m.project_updates), latency_ms(m.bare_updates)
        rows.append(
            Row(
                "   its update round trips (desk / bare) p50 / p99",
                f"{p.get('p50_ms')} / {p.get('p99_ms')} ms against {b.get('p50_ms')} / {b.get('p99_ms')} ms",
            )
        )
    rows += [
        Row(
            f"2. filing, {o.filing_concurrency} in flight: POST /v1/complaints / bare starts",
            f"{per_second(phases.get('API filing (POST)'))} / {per_second(phases.get('bare starts'))}",
        ),
        verdict("filing rate, API / bare", fmt_ratio(by_name["filing rate, API / bare"].value)),
        Row(
            f"3. GET /v1/complaints/{{id}}, {o.get_concurrency} in flight: p50 / p99",
            p50_p99(phases.get("API reads (GET)")) + f", {per_second(phases.get('API reads (GET)'))}",
        ),
        verdict("GET p50", f"{by_name['GET p50'].value} ms"),
        verdict("GET p99", f"{by_name['GET p99'].value} ms"),
        Row(
            f"4. update round trip, {o.concurrency} in flight: API p50 / p99",
            p50_p99(phases.get("API updates")),
        ),
        Row("   bare update (client) p50 / p99", p50_p99(phases.get("bare updates"))),
        verdict("update p50, API / bare", fmt_ratio(by_name["update p50, API / bare"].value)),
        Row(
            "RSS now / peak: project worker",
            memory(memories.get("worker", {})),
        ),
        Row("RSS now / peak: bare worker", memory(memories.get("bare_worker", {}))),
        Row("RSS now / peak: API", memory(memories.get("api", {}))),
        Row("RSS now / peak: dev server", memory(memories.get("server", {}))),
        Row("failed requests", str(sum(sum(c.errors.values()) for c in phases.values())), "0"),
        Row(
            "complaints not refunded exactly once as planned",
            "-" if m is None else str(len(m.problems)),
            "0",
        ),
        Row("run failures", str(len(failures)), "0"),
        Row("worker RSS < 1 GiB with 10,000 open", "bench 2: python -m bench.open_complaints"),
        Row("time-skipping lifecycle <= 100 ms", "bench 5: python -m bench.time_skipping"),
    ]
    return rows


def fmt_ratio(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}x"


async def bench(options: Options) -> int:
    began = time.monotonic()
    deadline = began + options.timeout
    load = os.getloadavg()
    failures: list[str] = []
    memories: dict[str, dict[str, float]] = {}
    async with stage(NAME, keep=options.keep) as st:
        queue, bare_queue = new_queue("project"), new_queue("bare")
        settings: dict[str, Any] = {}
        if options.workflow_cache is not None:
            settings["workflow_cache"] = options.workflow_cache
        worker = st.start_worker(queue, **settings)
        bare_worker = st.start_worker(bare_queue, baseline=True)
        secret = secrets.token_urlsafe(48)
        api, base_url = await start_api(st, queue, secret)
        print(f"API {base_url}; project queue {queue}, bare queue {bare_queue}", flush=True)
        host, _, port = base_url.removeprefix("http://").partition(":")
        run = Run(
            st=st,
            options=options,
            queue=queue,
            bare_queue=bare_queue,
            worker=worker,
            bare_worker=bare_worker,
            api=api,
            host=host,
            port=int(port),
            secret=secret,
            bare_client=await Client.connect(st.server.address),  # bare: the default converter, no codec
            clock=CpuClock(
                {"api": api.pid, "worker": worker.pid, "bare": bare_worker.pid, "server": st.server.pid}
            ),
            ttl=timedelta(seconds=options.timeout + 3600),
        )
        try:
            async with asyncio.timeout(options.timeout):
                print("1. lifecycles", flush=True)
                await run.phase_lifecycles(deadline)
                print("2. filing", flush=True)
                await run.phase_filing()
                print("3. reads", flush=True)
                await run.phase_reads()
                print("4. updates", flush=True)
                await run.phase_updates()
        except TimeoutError:
            failures.append(f"timed out after {options.timeout:.0f} s: the figures are partial")
        except (RunFailed, SystemExit) as stop:  # SystemExit: bench.lifecycle's way of saying so
            failures.append(str(stop))
        finally:
            await run.close()
            memories = {
                "worker": rss_mib(worker.pid),
                "bare_worker": rss_mib(bare_worker.pid),
                "api": rss_mib(api.pid),
                "server": rss_mib(st.server.pid),
            }
            if api.exited() is not None:
                failures.append(f"the API exited during the run with {api.exited()}: see {api.log}")
            await api.stop()
    for failure in failures:
        print(f"FAILED: {failure}", flush=True)

    found = targets(run)
    m = run.lifecycles
    errors = sum(sum(c.errors.values()) for c in run.phases.values())
    figures: dict[str, Any] = {
        "options": asdict(options),
        "sticky_cache": {
            "project": deployed_cache() if options.workflow_cache is None else options.workflow_cache,
            "bare": bare_cache({}),
        },
        "elapsed_seconds": round(time.monotonic() - began, 1),
        "load_average_before": [round(v, 2) for v in load],
        "targets": [asdict(t) for t in found],
        "lifecycles": None
        if m is None
        else {
            "plan": asdict(m.plan),
            "project": {**asdict(m.project), "steady_per_s": m.project.steady()},
            "bare": {**asdict(m.bare), "steady_per_s": m.bare.steady()},
            "ratio": m.ratio,
            "project_update_latency": latency_ms(m.project_updates),
            "bare_update_latency": latency_ms(m.bare_updates),
            "problems": m.problems[:50],
        },
        "phases": {name: calls.figures() for name, calls in run.phases.items()},
        "connections_opened": sum(lane.opened for lane in run.lanes.values()),
        "memory_mib": memories,
        "failures": failures,
    }
    title = "Targets: the project against bare Temporal with the SDK's defaults, one run, one dev server"
    name = NAME if options.workflow_cache is None else f"{NAME}-cache{options.workflow_cache}"
    report(name, title, rows_of(run, found, memories, failures), figures)
    problems = len(m.problems) if m is not None else 0
    return 1 if failures or errors or problems else 0


def parse(argv: Sequence[str] | None = None) -> Options:
    d = Options()
    p = argparse.ArgumentParser(prog="python -m bench.targets", description=__doc__.split("\n\n")[0])
    p.add_argument("--lifecycles", type=int, default=d.lifecycles, help="phase 1, each side (default 200)")
    p.add_argument(
        "--concurrency", type=int, default=d.concurrency, help="lifecycles (1) and complaints (4) in flight"
    )
    p.add_argument("--complaints", type=int, default=d.complaints, help="filed (2), read (3) and updated (4)")
    p.add_argument("--filing-concurrency", type=int, default=d.filing_concurrency, help="filings in flight")
    p.add_argument("--gets", type=int, default=d.gets, help="GETs in phase 3")
    p.add_argument("--get-concurrency", type=int, default=d.get_concurrency, help="GETs in flight")
    p.add_argument("--deadline", type=float, default=d.deadline, help="phase 1's rectification window, s")
    p.add_argument("--choice-window", type=float, default=d.choice_window, help="phase 1's remedy window, s")
    p.add_argument(
        "--workflow-cache",
        type=int,
        default=None,
        help="the project worker's sticky cache (default: as deployed)",
    )
    p.add_argument("--timeout", type=float, default=d.timeout, help="seconds for the whole run")
    p.add_argument("--seed", type=int, default=d.seed, help="which complaints the GETs read")
    p.add_argument("--keep", action="store_true", help="keep .data/bench/targets-run/ (logs, databases)")
    args = p.parse_args(argv)
    if min(args.lifecycles, args.concurrency, args.complaints, args.filing_concurrency, args.gets) < 1:
        p.error("the counts and concurrencies must be at least 1")
    if not 1 <= args.get_concurrency <= args.complaints:
        p.error("--get-concurrency must be 1 to --complaints: no two reads of one complaint in flight")
    return Options(**vars(args))


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(bench(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
