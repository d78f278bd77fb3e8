"""`gmsd bench --maintenance`: what Context Services maintenance costs (docs/api/context-services-maintenance.md).

- gmsd's RSS while it streams an export with content of N conversations (default 100,000, each
  with a state and a task), before and at its peak, and how long the export takes;
- how long a purge of those N services takes, per 10,000 services;
- what the auto-complete sweeper costs per idle service it completes (Redis and gmsd CPU, time).

Conversations are written straight through gmsd's own domain and store (`fill`), not over HTTP:
a bench of the maintenance operations should not spend its minutes creating data.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import msgspec
import redis
import redis.asyncio

from gmsd.backend.connect import command_queue
from gmsd.bench import harness as bench
from gmsd.config import SAMPLE_CONFIG, parse_config
from gmsd.cs.items import ConversationItems
from gmsd.cs.models import ServiceStartEvent, StateStartEvent, TaskStartEvent, decode_event
from gmsd.cs.services import ContextServices
from gmsd.cs.store import CsStore
from gmsd.keys import CS_PARTITIONS, cs_time_index

CS = "/genesys/1/cs"
FILL_BATCH = 500


async def fill_async(url: str, count: int, start: str = "2026-01-15T10:00:00.000Z", items: bool = True,
                     config_text: str = SAMPLE_CONFIG, extra: str = "") -> list[str]:
    """Create `count` conversations (a state and a task each when `items`) in the Redis at `url`;
    their ids. Each has its own customer, so they spread over every partition."""
    config = parse_config(config_text, "<bench>")
    client = redis.asyncio.Redis.from_url(url)
    pipeline = command_queue(url, client, config.redis)
    store = CsStore(pipeline)
    services, conversation = ContextServices(store, config), ConversationItems(store, config)
    state_event, state_raws = decode_event(b'{"state_type": "bench"}', StateStartEvent)
    task_event, task_raws = decode_event(b'{"task_type": "bench"}', TaskStartEvent)

    async def one(n: int) -> str:
        body = msgspec.json.encode({"customer_id": f"bench-{n}", "service_type": "bench", "timestamp": start,
                                    "payload": extra or None})
        event, raws = decode_event(body, ServiceStartEvent)
        sid = await services.start_service(event, raws)
        if items:
            await conversation.start_state(sid, state_event, state_raws)
            await conversation.start_task(sid, task_event, task_raws)
        return sid

    made: list[str] = []
    try:
        if count:  # alone first: it loads the scripts, which a batch would each try at once
            made.append(await one(0))
        for first in range(len(made), count, FILL_BATCH):
            made += await asyncio.gather(*(one(n) for n in range(first, min(first + FILL_BATCH, count))))
    finally:
        await pipeline.aclose()
        await client.aclose()
    return made


def fill(url: str, count: int, **kwargs: Any) -> list[str]:
    """`fill_async` from synchronous code."""
    return asyncio.run(fill_async(url, count, **kwargs))


def stream_export(base: str, pid: int, params: dict[str, str]) -> dict[str, Any]:
    """Stream an export, sampling gmsd's RSS meanwhile: bytes, chunks, seconds, RSS before and peak."""
    body = bytearray()
    chunks = 0
    started = time.perf_counter()
    url = f"{base}{CS}/maintenance/services/stream"
    with bench.PeakRss(pid, interval=0.01) as rss, httpx.stream("GET", url, params=params, timeout=600) as answer:
        answer.raise_for_status()
        chunked = answer.headers.get("transfer-encoding") == "chunked"
        for chunk in answer.iter_raw():
            chunks += 1
            body += chunk
    seconds = round(time.perf_counter() - started, 2)
    return {"bytes": len(body), "chunks": chunks, "chunked": chunked, "seconds": seconds,
            "baseline_rss_mib": round(rss.baseline / 2**20, 1), "peak_rss_mib": round(rss.peak / 2**20, 1),
            "body": bytes(body)}


SWEEP_CONFIG = """
[context_services]
auto_complete_enabled = true
auto_complete_after = 1
auto_complete_sweep_interval = 0.2
"""


def run(options: argparse.Namespace) -> dict[str, Any]:
    """Measure the maintenance figures on a fresh local Redis; the figures as a dict."""
    count = options.maintenance_services
    report: dict[str, Any] = {"machine": bench._machine(), "services": count}
    with tempfile.TemporaryDirectory(prefix="gmsd-maintenance-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        port = bench._redis(work, stack)
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis(port=port)
        started = time.perf_counter()
        fill(url, count)
        report["fill_seconds"] = round(time.perf_counter() - started, 1)
        base, pid, _ = bench._gmsd(url, 1, "minimal", work, stack)  # figures of the store, not of the log
        everything = {"time_from": "2026-01-01T00:00:00Z", "time_to": "2026-12-31T00:00:00Z"}
        exported = stream_export(base, pid, {**everything, "export_content": "true"})
        report["export_content"] = {k: v for k, v in exported.items() if k != "body"}
        report["export_content"]["services"] = len(msgspec.json.decode(exported["body"]))
        ids = stream_export(base, pid, everything)
        report["export_ids"] = {k: v for k, v in ids.items() if k != "body"}
        started = time.perf_counter()
        purged = httpx.post(f"{base}{CS}/maintenance/purge", timeout=3600,
                            json={"limit": "2026-12-31T00:00:00Z", "operation": "purge.service.all"}).json()
        seconds = time.perf_counter() - started
        report["purge"] = {"purged": purged["purged"], "seconds": round(seconds, 2),
                           "seconds_per_10000": round(seconds * 10_000 / max(1, purged["purged"]), 2),
                           "redis_keys_left": client.dbsize()}
    if options.sweep_services > 0:
        report["sweep"] = _sweep_cost(options)
    return report


def _completed_count(client: redis.Redis) -> int:
    """Services in the end-time index, over every partition (what the sweeper completed)."""
    pipe = client.pipeline(transaction=False)
    for partition in range(CS_PARTITIONS):
        pipe.zcard(cs_time_index(partition)[1])
    return sum(pipe.execute())


def _sweep_cost(options: argparse.Namespace) -> dict[str, Any]:
    """Idle services completed by the sweeper of one gmsd: time and CPU per service; and what a
    sweep costs when nothing is due."""
    count = options.sweep_services
    with tempfile.TemporaryDirectory(prefix="gmsd-sweep-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        port = bench._redis(work, stack)
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis(port=port)
        config = work / "sweep.toml"
        config.write_text(SWEEP_CONFIG)
        redis_pid = int(client.info("server")["process_id"])
        _, pid = _gmsd_with(url, config, work, stack)
        fill(url, count, config_text=SWEEP_CONFIG, start="2026-01-15T10:00:00.000Z")
        cpu_before, redis_before = bench.cpu_seconds(pid), bench.cpu_seconds(redis_pid)
        started = time.perf_counter()
        deadline = time.monotonic() + 600
        completed = 0
        while time.monotonic() < deadline and completed < count:
            time.sleep(0.5)
            completed = _completed_count(client)
        seconds = time.perf_counter() - started
        gmsd_cpu = bench.cpu_seconds(pid) - cpu_before
        redis_cpu = bench.cpu_seconds(redis_pid) - redis_before
        # nothing due: what the sweeps themselves cost (one every interval)
        idle_before, idle_redis = bench.cpu_seconds(pid), bench.cpu_seconds(redis_pid)
        quiet = 5.0
        time.sleep(quiet)
        sweeps = quiet / 0.2
        return {"idle_services": count, "completed": completed, "seconds": round(seconds, 2),
                "gmsd_cpu_us_per_service": round(gmsd_cpu * 1e6 / count, 1),
                "redis_cpu_us_per_service": round(redis_cpu * 1e6 / count, 1),
                "gmsd_cpu_ms_per_empty_sweep": round((bench.cpu_seconds(pid) - idle_before) * 1e3 / sweeps, 2),
                "redis_cpu_ms_per_empty_sweep": round((bench.cpu_seconds(redis_pid) - idle_redis) * 1e3 / sweeps, 2)}


def _gmsd_with(url: str, config: Path, work: Path, stack: ExitStack) -> tuple[str, int]:
    """`gmsd serve` (one worker) with the configuration file `config`."""
    port = bench.free_port()
    process = stack.enter_context(bench._process(
        [sys.executable, "-m", "gmsd.cli", "serve", "--port", str(port), "--workers", "1",
         "--redis-url", url, "--config", str(config), "--log-level", "warning"]))
    base = f"http://127.0.0.1:{port}"
    bench._wait_http(base + "/healthz", process, "gmsd serve")
    return base, process.pid


def markdown(report: dict[str, Any]) -> str:
    """The maintenance figures as Markdown."""
    content, ids, purge = report["export_content"], report["export_ids"], report["purge"]
    lines = [
        f"- Stream export with content of {content['services']:,} conversations (a state and a task each): "
        f"{content['bytes'] / 2**20:.1f} MiB in {content['seconds']} s, {content['chunks']} chunks; gmsd RSS "
        f"{content['baseline_rss_mib']} MiB before, **{content['peak_rss_mib']} MiB peak**",
        f"- The same export, ids only: {ids['bytes'] / 2**20:.1f} MiB in {ids['seconds']} s; RSS peak "
        f"{ids['peak_rss_mib']} MiB",
        f"- Purge of {purge['purged']:,} services (`purge.service.all`): {purge['seconds']} s, "
        f"**{purge['seconds_per_10000']} s per 10,000 services**; Redis keys left: {purge['redis_keys_left']}",
    ]
    sweep = report.get("sweep")
    if sweep:
        lines.append(
            f"- Auto-complete of {sweep['completed']:,} idle services by one gmsd's sweeper: {sweep['seconds']} s "
            f"after they were created; **{sweep['gmsd_cpu_us_per_service']} µs gmsd CPU and "
            f"{sweep['redis_cpu_us_per_service']} µs Redis CPU per idle service** (the sweeps of that time "
            f"included); a sweep with nothing due (1,024 partitions): {sweep['gmsd_cpu_ms_per_empty_sweep']} ms gmsd "
            f"CPU, {sweep['redis_cpu_ms_per_empty_sweep']} ms Redis CPU")
    return "\n".join(lines)
