"""Benchmark 4, the HTTP API against the same calls made directly on `ComplaintDesk` (`starter.desk`), on
one dev server, one worker and one SQLite ledger.

    .venv/bin/python -m bench.api [--complaints 300] [--gets 1200] [--serial 80] [--concurrency 32]
                                  [--rounds 2] [--workflow-cache N] [--timeout 600] [--seed 0] [--keep]

`refund-desk serve` runs as a real uvicorn process (as `make run` starts it: `python -m starter.cli serve
--log-level warning`), configured only through the environment; the bench process is its client, a
keep-alive httpx pool of `--concurrency` connections. The direct path is a `ComplaintDesk` in the bench
process, driven by the same lanes. Both file a `major_defect` complaint on a fresh software order (`POST
/v1/complaints` as the backend, `desk.file_complaint`) and read complaints (`GET /v1/complaints/{id}` as
support, `desk.get_for`): the very desk calls the routes make, so the difference is what HTTP, auth,
validation and JSON cost on top.

Two loads per operation and path: `--complaints` POSTs and `--gets` GETs with `--concurrency` requests in
flight (a closed loop: each lane sends its next request when the last one answered), for requests per
second and the latency under load; then `--serial` of each one at a time, for the latency the HTTP layer
adds to one request when nothing queues. Each load runs in `--rounds` slices, the order of the two paths
swapped every round (API then direct, direct then API, ...), so a drift over the run (the dev server's
SQLite growing) weighs on both alike. Before each slice the system settles: every complaint filed so far
projected into the ledger and the worker idle, so what one slice leaves behind is not billed to the next.

The windows are the policy's defaults (days): nothing ends during the run, so every GET is of an open
complaint, a ledger read plus a workflow query that the worker answers by replaying the history (it runs
without a sticky cache, `REFUND_DESK_WORKFLOW_CACHE=0`, unless `--workflow-cache` says otherwise; such a
run writes `api-cache<N>.json`). The GETs go over every complaint filed in shuffled passes, so no two reads
of one complaint are in flight together (see `reads`).

Per path and operation: requests per second (count over the slices' wall time), p50/p99 of the latency seen
by the caller, and CPU milliseconds per request of each process (API, worker, dev server, the bench process
itself), with what the rest of the machine used meanwhile ("others": another benchmark running at the same
time spoils the figures). Any failed request (non-2xx, an exception) fails the run (exit 1), as does running
past `--timeout`; the figures go to `.data/bench/api.json` either way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bench.processes import WorkerProcess, free_port
from bench.report import Row, latency_ms, report, rss_mib
from bench.stage import Stage, new_queue, stage
from policy.models import Actor, ComplaintKind, Money, Order, Product, ProductKind, Role
from starter.api.auth import mint_token
from starter.desk import ComplaintDesk

T = TypeVar("T")

PRODUCT = Product(sku="plugin-seo-pro", kind=ProductKind.SOFTWARE, name="SEO Pro plugin")
DESCRIPTION = "The licensing module crashes on every request since the last update; logs attached."
BACKEND = Actor(role=Role.BACKEND, id="shop")
SUPPORT = Actor(role=Role.SUPPORT, id="alice")
PATHS = ("api", "direct")
PATH_NAMES = {"api": "HTTP API", "direct": "direct desk"}
OPERATIONS = {"post": "POST /v1/complaints", "get": "GET /v1/complaints/{id}"}
LOADS = ("loaded", "serial")
PROCESSES = ("api", "worker", "server", "bench")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Options:
    complaints: int = 300
    """POSTs per path (each on an order of its own)."""
    gets: int = 1200
    """GETs per path, over the complaints filed."""
    serial: int = 80
    """POSTs and GETs per path one at a time, after the loaded ones."""
    concurrency: int = 32
    rounds: int = 2
    workflow_cache: int | None = None
    """The worker's sticky cache (`REFUND_DESK_WORKFLOW_CACHE`); None: the project's default (0)."""
    timeout: float = 600.0
    seed: int = 0
    keep: bool = False


class Failed(Exception):
    """A request that did not answer as it should; `label` groups it in the error counts."""

    def __init__(self, label: str, detail: str) -> None:
        super().__init__(detail)
        self.label = label


@dataclass
class Slice:
    """One measured run of one operation on one path."""

    load: str
    operation: str
    path: str
    round: int
    concurrency: int
    count: int
    wall_seconds: float
    latencies: list[float]
    errors: Counter[str]
    examples: dict[str, str]
    cpu_seconds: dict[str, float]

    def figures(self) -> dict[str, Any]:
        return {
            "load": self.load,
            "operation": self.operation,
            "path": self.path,
            "round": self.round,
            "concurrency": self.concurrency,
            "count": self.count,
            "wall_seconds": round(self.wall_seconds, 3),
            "requests_per_second": round(len(self.latencies) / self.wall_seconds, 1),
            "latency": latency_ms(self.latencies),
            "errors": dict(self.errors),
            "cpu_seconds": {name: round(value, 3) for name, value in self.cpu_seconds.items()},
        }


@dataclass
class Totals:
    """Every slice of one operation on one path, together."""

    count: int = 0
    wall_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    cpu_seconds: Counter[str] = field(default_factory=Counter)

    def add(self, part: Slice) -> None:
        self.count += part.count
        self.wall_seconds += part.wall_seconds
        self.latencies += part.latencies
        self.errors.update(part.errors)
        for label, example in part.examples.items():
            self.examples.setdefault(label, example)
        self.cpu_seconds.update(part.cpu_seconds)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall_seconds if self.wall_seconds else 0.0

    def cpu_ms_per_request(self) -> dict[str, float]:
        done = max(1, len(self.latencies))
        return {name: round(self.cpu_seconds[name] * 1000 / done, 2) for name in PROCESSES}

    def cores_busy(self) -> dict[str, float]:
        """CPU seconds over wall seconds: 1.0 is one core flat out."""
        wall = self.wall_seconds or 1.0
        return {name: round(self.cpu_seconds[name] / wall, 2) for name in (*PROCESSES, "other")}

    def figures(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "succeeded": len(self.latencies),
            "wall_seconds": round(self.wall_seconds, 3),
            "requests_per_second": round(self.rate, 1),
            "latency": latency_ms(self.latencies),
            "errors": dict(self.errors),
            "error_examples": self.examples,
            "cpu_ms_per_request": self.cpu_ms_per_request(),
            "cores_busy": self.cores_busy(),
        }


# --------------------------------------------------------------------------------------------- clocks


def process_cpu(pid: int | None) -> float:
    """User plus system CPU seconds of a process (all its threads) so far; 0 if it is gone."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu() -> float:
    """CPU seconds the whole machine has been busy so far (every core, every process; /proc/stat)."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


@dataclass
class CpuClock:
    """The CPU each process of the run has used (the API, the worker, the dev server, this one), and what
    the rest of the machine used meanwhile ("other": anything else running spoils the figures)."""

    pids: dict[str, int | None]

    def read(self) -> dict[str, float]:
        now = {name: process_cpu(pid) for name, pid in self.pids.items()}
        now["bench"] = time.process_time()
        now["machine"] = machine_cpu()
        return now

    def since(self, before: dict[str, float]) -> dict[str, float]:
        after = self.read()
        used = {name: after[name] - before[name] for name in (*self.pids, "bench")}
        used["other"] = max(0.0, after["machine"] - before["machine"] - sum(used.values()))
        return used


# --------------------------------------------------------------------------------------------- driving


def _label(err: BaseException) -> str:
    if isinstance(err, Failed):
        return err.label
    code = getattr(err, "code", None)
    return f"{type(err).__name__} {code}" if isinstance(code, str) else type(err).__name__


async def drive(
    items: Sequence[T], call: Callable[[T], Awaitable[None]], concurrency: int
) -> tuple[float, list[float], Counter[str], dict[str, str]]:
    """`call` on every item from `concurrency` lanes, each starting its next item as soon as the last one
    answered (a closed loop); the wall time, the latency of each success, and the failures by label."""
    return await drive_lanes(items, lambda item, _lane: call(item), concurrency)


async def drive_lanes(
    items: Sequence[T], call: Callable[[T, int], Awaitable[None]], concurrency: int
) -> tuple[float, list[float], Counter[str], dict[str, str]]:
    """`drive`, telling `call` which lane (0 to `concurrency` - 1) sends the item: a caller per lane."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    examples: dict[str, str] = {}
    pending = iter(items)

    async def lane(number: int) -> None:
        for item in pending:
            began = time.perf_counter()
            try:
                await call(item, number)
            except Exception as err:
                label = _label(err)
                errors[label] += 1
                examples.setdefault(label, str(err)[:400])
            else:
                latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(lane(n) for n in range(max(1, min(concurrency, len(items))))))
    return time.perf_counter() - began, latencies, errors, examples


@dataclass
class Bench:
    st: Stage
    desk: ComplaintDesk
    http: httpx.AsyncClient
    backend_auth: dict[str, str]
    support_auth: dict[str, str]
    clock: CpuClock
    worker_pid: int | None
    concurrency: int
    filed: list[str] = field(default_factory=list)
    slices: list[Slice] = field(default_factory=list)

    # The four calls: the API's route and the desk call it makes, for each operation.

    async def post_api(self, order_id: str) -> None:
        body = {"order_id": order_id, "kind": "major_defect", "description": DESCRIPTION}
        response = await self.http.post("/v1/complaints", json=body, headers=self.backend_auth)
        self.filed.append(expect(response, 201)["complaint_id"])

    async def post_direct(self, order_id: str) -> None:
        state = await self.desk.file_complaint(order_id, ComplaintKind.MAJOR_DEFECT, DESCRIPTION, BACKEND)
        self.filed.append(state.complaint_id)

    async def get_api(self, complaint_id: str) -> None:
        response = await self.http.get(f"/v1/complaints/{complaint_id}", headers=self.support_auth)
        if expect(response, 200)["complaint_id"] != complaint_id:
            raise Failed("wrong complaint", f"asked for {complaint_id}, got {response.text[:200]}")

    async def get_direct(self, complaint_id: str) -> None:
        state = await self.desk.get_for(complaint_id, SUPPORT)
        if state.complaint_id != complaint_id:
            raise Failed("wrong complaint", f"asked for {complaint_id}, got {state.complaint_id}")

    def call(self, operation: str, path: str) -> Callable[[str], Awaitable[None]]:
        calls: dict[tuple[str, str], Callable[[str], Awaitable[None]]] = {
            ("post", "api"): self.post_api,
            ("post", "direct"): self.post_direct,
            ("get", "api"): self.get_api,
            ("get", "direct"): self.get_direct,
        }
        return calls[(operation, path)]

    async def measure(
        self, load: str, operation: str, path: str, round_no: int, items: Sequence[str]
    ) -> Slice:
        concurrency = self.concurrency if load == "loaded" else 1
        await self.settle()
        before = self.clock.read()
        wall, latencies, errors, examples = await drive(items, self.call(operation, path), concurrency)
        cpu = self.clock.since(before)
        part = Slice(
            load, operation, path, round_no, concurrency, len(items), wall, latencies, errors, examples, cpu
        )
        self.slices.append(part)
        failed = sum(errors.values())
        lat = latency_ms(latencies)
        print(
            f"  {load:<6} round {round_no} {OPERATIONS[operation]:<23} {PATH_NAMES[path]:<11} "
            f"{len(items):>5} in {wall:6.1f} s: {len(latencies) / wall:6.1f} req/s, "
            f"p50 {lat.get('p50_ms', math.nan):7.1f} ms, p99 {lat.get('p99_ms', math.nan):7.1f} ms"
            + (f", {failed} FAILED: {dict(errors)}" if failed else ""),
            flush=True,
        )
        return part

    async def settle(self, seconds: float = 120) -> None:
        """Until every complaint filed so far is in the ledger's projection and the worker has been idle
        (under 10% of a core) for three ticks of 0.2 s: what one slice started is not billed to the next."""
        deadline = time.monotonic() + seconds
        quiet = 0
        last = process_cpu(self.worker_pid)
        while quiet < 3:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker did not settle within {seconds:.0f} s")
            await asyncio.sleep(0.2)
            now = process_cpu(self.worker_pid)
            projected = (await self.st.ledger.table_counts(["complaints"]))["complaints"]
            quiet = quiet + 1 if now - last < 0.02 and projected >= len(self.filed) else 0
            last = now


def expect(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = "?"
        raise Failed(f"HTTP {response.status_code} {code}", response.text[:400])
    body: dict[str, Any] = response.json()
    return body


# ------------------------------------------------------------------------------------------- the run


def orders(prefix: str, count: int) -> list[Order]:
    placed = datetime.now(UTC)
    return [
        Order(
            order_id=f"{prefix}-{i:06d}",
            customer_id=f"cust-{prefix}-{i % 97:02d}",
            product=PRODUCT,
            price=Money(amount=Decimal("49.90"), currency="EUR"),
            placed_at=placed,
        )
        for i in range(count)
    ]


async def record_orders(desk: ComplaintDesk, prefix: str, count: int) -> list[str]:
    made = orders(prefix, count)

    async def record(order: Order) -> None:
        await desk.record_order(order)

    _, _, errors, examples = await drive(made, record, 4)
    if errors:
        raise RuntimeError(f"recording orders failed: {dict(errors)} {examples}")
    return [order.order_id for order in made]


async def start_api(st: Stage, queue: str, secret: str) -> tuple[WorkerProcess, str]:
    """`python -m starter.cli serve` on a free loopback port, as `make run` starts it; healthy on return."""
    port = free_port()
    api = WorkerProcess(
        environment={**st.environment(queue), "REFUND_DESK_JWT_SECRET": secret},
        log=st.workdir / "api.log",
        arguments=(
            "-m",
            "starter.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ),
    )
    api.start()
    base_url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as probe:
        for _ in range(600):
            if api.exited() is not None:
                raise RuntimeError(f"the API exited with {api.exited()}: see {api.log}")
            try:
                if (await probe.get("/healthz")).status_code == 200:
                    return api, base_url
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the API never became healthy: see {api.log}")


def split(items: Sequence[str], parts: int) -> list[list[str]]:
    """`items` in `parts` consecutive slices of (nearly) equal length."""
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return out


def reads(pool: Sequence[str], count: int, rng: random.Random) -> list[str]:
    """`count` complaint ids in shuffled passes over `pool`: a complaint comes back only after every other
    one has, so with more complaints than lanes no two reads of one complaint are ever in flight together.

    On purpose: with the worker's default `REFUND_DESK_WORKFLOW_CACHE=0`, two queries of one workflow at
    once make the SDK evict the run with the second still buffered ("There were leftover buffered tasks when
    evicting run"), and that query is lost: 30 s later the API answers 503 `complaint_unresponsive`. This
    benchmark measures throughput; that failure is reported apart, not mixed into the figures."""
    out: list[str] = []
    while len(out) < count:
        shuffled = list(pool)
        rng.shuffle(shuffled)
        out += shuffled
    return out[:count]


def ratio(api: float, direct: float) -> float:
    return round(api / direct, 2) if direct and not math.isnan(direct) else math.nan


def interleaved(round_no: int) -> tuple[str, ...]:
    """API then direct in odd rounds, direct then API in even ones."""
    return PATHS if round_no % 2 == 1 else PATHS[::-1]


async def run(options: Options) -> int:
    rng = random.Random(options.seed)
    warm = max(1, min(options.concurrency, 64))
    async with stage("api", keep=options.keep) as st:
        queue = new_queue("api")
        if options.workflow_cache is None:
            worker = st.start_worker(queue)
        else:
            worker = st.start_worker(queue, workflow_cache=options.workflow_cache)
        secret = secrets.token_urlsafe(48)
        api, base_url = await start_api(st, queue, secret)
        pids = {
            "api": api.pid,
            "worker": worker.pid,
            "server": st.server.pid,
        }
        print(f"API {base_url} (pid {pids['api']}), worker pid {pids['worker']}, queue {queue}", flush=True)
        load = os.getloadavg()
        print(f"load average before the run: {load[0]:.2f} (anything else running shows as others)")
        try:
            ttl = timedelta(seconds=options.timeout + 3600)
            limits = httpx.Limits(
                max_connections=options.concurrency, max_keepalive_connections=options.concurrency
            )
            async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as http:
                bench = Bench(
                    st=st,
                    desk=st.desk(queue),
                    http=http,
                    backend_auth=bearer(secret, Role.BACKEND, BACKEND.id, ttl),
                    support_auth=bearer(secret, Role.SUPPORT, SUPPORT.id, ttl),
                    clock=CpuClock(pids),
                    worker_pid=pids["worker"],
                    concurrency=options.concurrency,
                )
                began = time.monotonic()
                timed_out = False
                try:
                    async with asyncio.timeout(options.timeout):
                        await measure_all(bench, options, rng, warm)
                except TimeoutError:
                    timed_out = True
                    print(f"TIMED OUT after {options.timeout:.0f} s: the figures are partial", flush=True)
                elapsed = time.monotonic() - began
            memory = {"api": rss_mib(pids["api"]), "worker": rss_mib(pids["worker"])}
            api_exit = api.exited()
            if api_exit is not None:
                print(f"THE API EXITED during the run with {api_exit}: see {api.log}", flush=True)
        finally:
            await api.stop()
        return summarize(options, bench, memory, elapsed, timed_out or api_exit is not None, pids, load)


def bearer(secret: str, role: Role, sub: str, ttl: timedelta) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(secret, role, sub, ttl)}"}


async def measure_all(bench: Bench, options: Options, rng: random.Random, warm: int) -> None:
    began = time.monotonic()
    per_path = warm + options.complaints + options.serial
    order_ids = {
        path: await record_orders(bench.desk, f"{path}-{secrets.token_hex(3)}", per_path) for path in PATHS
    }
    print(f"{2 * per_path} orders recorded in {time.monotonic() - began:.1f} s", flush=True)

    # Warm-up, not measured: connections opened, code paths loaded, on both paths.
    for path in PATHS:
        await drive(order_ids[path][:warm], bench.call("post", path), options.concurrency)
    await bench.settle()
    warm_ids = list(bench.filed)
    for path in PATHS:
        await drive(warm_ids * 2, bench.call("get", path), options.concurrency)
    print(f"warmed up with {warm} POSTs and {2 * len(warm_ids)} GETs per path", flush=True)

    loaded = {path: order_ids[path][warm : warm + options.complaints] for path in PATHS}
    serial = {path: order_ids[path][warm + options.complaints :] for path in PATHS}
    await alternate(bench, "loaded", "post", loaded, options.rounds)
    await alternate(bench, "serial", "post", serial, options.rounds)

    # Both paths read the same complaints in the same order.
    targets = reads(bench.filed, options.gets + options.serial, rng)
    await alternate(bench, "loaded", "get", dict.fromkeys(PATHS, targets[: options.gets]), options.rounds)
    await alternate(bench, "serial", "get", dict.fromkeys(PATHS, targets[options.gets :]), options.rounds)


async def alternate(
    bench: Bench, load: str, operation: str, items: dict[str, list[str]], rounds: int
) -> None:
    """Each path's `items` in `rounds` slices, the paths taking turns to go first."""
    slices = {path: split(items[path], rounds) for path in PATHS}
    for round_no in range(1, rounds + 1):
        for path in interleaved(round_no):
            if slices[path][round_no - 1]:
                await bench.measure(load, operation, path, round_no, slices[path][round_no - 1])


def summarize(
    options: Options,
    bench: Bench,
    memory: dict[str, dict[str, float]],
    elapsed: float,
    timed_out: bool,
    pids: dict[str, int | None],
    load: tuple[float, float, float],
) -> int:
    totals = {(kind, op, path): Totals() for kind in LOADS for op in OPERATIONS for path in PATHS}
    for part in bench.slices:
        totals[(part.load, part.operation, part.path)].add(part)
    rows: list[Row] = []
    compared: dict[str, dict[str, float]] = {}
    for op, title in OPERATIONS.items():
        for path in PATHS:
            t = totals[("loaded", op, path)]
            lat = latency_ms(t.latencies)
            rows.append(
                Row(
                    f"{title}, {PATH_NAMES[path]}",
                    f"{t.rate:7.1f} req/s  p50 {lat.get('p50_ms', math.nan):7.1f} ms  "
                    f"p99 {lat.get('p99_ms', math.nan):7.1f} ms",
                )
            )
        api, direct = totals[("loaded", op, "api")], totals[("loaded", op, "direct")]
        api_lat, direct_lat = latency_ms(api.latencies), latency_ms(direct.latencies)
        one_api = latency_ms(totals[("serial", op, "api")].latencies)
        one_direct = latency_ms(totals[("serial", op, "direct")].latencies)
        compared[op] = {
            "requests_per_second": ratio(api.rate, direct.rate),
            "p50": ratio(api_lat.get("p50_ms", math.nan), direct_lat.get("p50_ms", math.nan)),
            "p99": ratio(api_lat.get("p99_ms", math.nan), direct_lat.get("p99_ms", math.nan)),
            "one_at_a_time_p50_added_ms": round(
                one_api.get("p50_ms", math.nan) - one_direct.get("p50_ms", math.nan), 1
            ),
        }
        rows.append(
            Row(
                f"{title}, API / direct",
                f"{compared[op]['requests_per_second']:7.2f}x        p50 {compared[op]['p50']:6.2f}x     "
                f"p99 {compared[op]['p99']:6.2f}x",
            )
        )
    for op, title in OPERATIONS.items():
        for path in PATHS:
            lat = latency_ms(totals[("serial", op, path)].latencies)
            rows.append(
                Row(
                    f"{title.split()[0]} one at a time, {PATH_NAMES[path]}",
                    f"{'':16}p50 {lat.get('p50_ms', math.nan):7.1f} ms  "
                    f"p99 {lat.get('p99_ms', math.nan):7.1f} ms",
                )
            )
        rows.append(
            Row(
                f"{title.split()[0]} one at a time, HTTP adds",
                f"{'':16}p50 {compared[op]['one_at_a_time_p50_added_ms']:+7.1f} ms",
            )
        )
    for op, title in OPERATIONS.items():
        for path in PATHS:
            t = totals[("loaded", op, path)]
            cpu, busy = t.cpu_ms_per_request(), t.cores_busy()
            rows.append(
                Row(
                    f"{title.split()[0]} {PATH_NAMES[path]}: CPU ms/req api/worker/server/bench",
                    " / ".join(f"{cpu[name]:.1f}" for name in PROCESSES)
                    + "   cores busy "
                    + " / ".join(f"{busy[name]:.2f}" for name in PROCESSES)
                    + f", others {busy['other']:.2f}",
                )
            )
    errors: Counter[str] = Counter()
    for t in totals.values():
        errors.update(t.errors)
    rows.append(Row("failed requests", str(sum(errors.values())) + (f" {dict(errors)}" if errors else "")))
    rows.append(Row("API RSS at the end", f"{memory['api'].get('rss_mib', math.nan)} MiB"))
    title = (
        f"API vs direct client: {options.complaints} POSTs and {options.gets} GETs per path with "
        f"{options.concurrency} in flight, {options.serial} of each one at a time, {options.rounds} rounds"
        + ("" if options.workflow_cache is None else f", workflow cache {options.workflow_cache}")
    )
    figures = {
        "options": dict(vars(options)),
        "elapsed_seconds": round(elapsed, 1),
        "timed_out": timed_out,
        "workflow_cache": 0 if options.workflow_cache is None else options.workflow_cache,
        "pids": pids,
        "load_average_before": [round(v, 2) for v in load],
        "python_dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
        "memory_mib": memory,
        "totals": {f"{kind}/{op}/{path}": t.figures() for (kind, op, path), t in totals.items()},
        "api_vs_direct": compared,
        "slices": [part.figures() for part in bench.slices],
    }
    name = "api" if options.workflow_cache is None else f"api-cache{options.workflow_cache}"
    report(name, title, rows, figures)
    if errors:
        examples = {label: totals_example(totals, label) for label in errors}
        print(f"FAILED requests: {json.dumps(examples, indent=2)}", flush=True)
    done = sum(t.count for t in totals.values())
    planned = 2 * (options.complaints + options.gets + 2 * options.serial)
    return 1 if errors or timed_out or done < planned else 0


def totals_example(totals: dict[tuple[str, str, str], Totals], label: str) -> str:
    for t in totals.values():
        if label in t.examples:
            return t.examples[label]
    return ""


def parse(argv: Sequence[str] | None = None) -> Options:
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--complaints", type=int, default=defaults.complaints, help="POSTs per path")
    parser.add_argument("--gets", type=int, default=defaults.gets, help="GETs per path")
    parser.add_argument("--serial", type=int, default=defaults.serial, help="of each, one at a time")
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=defaults.rounds, help="alternations of the paths")
    parser.add_argument(
        "--workflow-cache",
        type=int,
        default=None,
        help="the worker's sticky cache (default: the project's, 0)",
    )
    parser.add_argument("--timeout", type=float, default=defaults.timeout, help="seconds, the whole run")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="which complaints the GETs read")
    parser.add_argument("--keep", action="store_true", help="keep .data/bench/api-run/ (logs, databases)")
    args = parser.parse_args(argv)
    if min(args.complaints, args.gets, args.concurrency, args.rounds) < 1 or args.serial < 0:
        parser.error(
            "--complaints, --gets, --concurrency and --rounds must be at least 1, --serial 0 or more"
        )
    return Options(**vars(args))


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(asyncio.run(run(parse(argv))))


if __name__ == "__main__":
    main()
