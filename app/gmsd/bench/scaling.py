"""`gmsd bench --scaling`: how memory, query latency and RSS scale (docs/BENCHMARKS.md).

- memory in Redis per GMS service with three 20-byte keys, and per conversation with 2 states
  and 2 tasks (MEMORY USAGE summed over every key, divided by the count);
- latency of a customer query with 10, 100 and 1,000 services while Redis holds 100,000 other
  conversations (it must not grow with the total);
- memory in Redis per customer profile with 5 core attributes and 2 phone records (created through
  the API, with an identification key on the phone number);
- gmsd's peak RSS while 16 clients upload 10 MiB files at once.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import redis

from gmsd.bench import harness as bench
from gmsd.bench import profiles as bench_profiles

CS = "/genesys/1/cs"


def _memory_per_key_set(client: redis.Redis, count: int) -> float:
    total = 0
    for key in client.scan_iter(count=1000):
        total += client.memory_usage(key, samples=0) or 0
    return total / count


async def _gather_limited(calls: list[Any], limit: int = 64) -> None:
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Any) -> None:
        async with semaphore:
            await call()

    await asyncio.gather(*(one(call) for call in calls))


async def _conversation(client: httpx.AsyncClient, customer: str, states: int = 2, tasks: int = 2) -> str:
    started = await client.post(f"{CS}/services/start", json={"customer_id": customer, "service_type": "Sales"})
    started.raise_for_status()
    service_id = started.json()["service_id"]
    for i in range(states):
        (await client.post(f"{CS}/services/{service_id}/states/start", json={"state_type": f"S{i}"})).raise_for_status()
    for i in range(tasks):
        (await client.post(f"{CS}/services/{service_id}/tasks/start", json={"task_type": f"T{i}"})).raise_for_status()
    return str(service_id)


async def _fill(base: str, customers: list[tuple[str, int]], states: int, tasks: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=64)) as client:
        calls = [lambda c=customer: _conversation(client, c, states, tasks)
                 for customer, n in customers for _ in range(n)]
        await _gather_limited(calls)


async def _gms_services(base: str, count: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=64)) as client:
        async def create() -> None:
            response = await client.post("/genesys/1/service/bench", data={
                "firstname": "a" * 20, "language": "b" * 20, "phone": "c" * 20})
            response.raise_for_status()

        await _gather_limited([create] * count)


async def _profiles(base: str, count: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=64)) as client:
        async def create(i: int) -> None:
            response = await client.post(f"{CS}/profiles", json=bench_profiles.profile_body(i))
            response.raise_for_status()

        await _gather_limited([lambda i=i: create(i) for i in range(count)])


def _query_latency_ms(base: str, customer: str, repeat: int = 30) -> float:
    samples = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(f"{CS}/customers/{customer}/services")
            samples.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return statistics.median(samples)


def _upload_peak_rss(base: str, pid: int, clients: int = 16, size: int = 10 * 1024 * 1024) -> dict[str, float]:
    payload = bytes(size)
    statuses: list[int] = []

    def upload() -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            response = client.post("/genesys/1/service/bench-upload",
                                   files={"photo": ("big.jpg", payload, "image/jpeg")})
            statuses.append(response.status_code)

    threads = [threading.Thread(target=upload) for _ in range(clients)]
    with bench.PeakRss(pid) as rss:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return {"clients": clients, "file_mib": size / 2**20, "baseline_rss_mib": round(rss.baseline / 2**20, 1),
            "peak_rss_mib": round(rss.peak / 2**20, 1), "ok": statuses.count(200)}


def run(options: argparse.Namespace) -> dict[str, Any]:
    """Measure the scaling figures on a fresh local Redis; the figures as a dict."""
    import tempfile

    report: dict[str, Any] = {"machine": bench._machine()}
    with tempfile.TemporaryDirectory(prefix="gmsd-scaling-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        port = bench._redis(work, stack)
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis(port=port)
        base, pid, _ = bench._gmsd(url, options.workers, "minimal", work, stack)  # memory: no log needed

        asyncio.run(_gms_services(base, 1000))
        report["redis_bytes_per_gms_service_3x20B"] = round(_memory_per_key_set(client, 1000))
        client.flushall()

        asyncio.run(_fill(base, [(f"mem-{i}", 1) for i in range(1000)], 2, 2))
        report["redis_bytes_per_conversation_2_states_2_tasks"] = round(_memory_per_key_set(client, 1000))
        client.flushall()

        bench_profiles.prepare(base)
        asyncio.run(_profiles(base, 1000))
        report["redis_bytes_per_profile_5_core_2_phones"] = round(_memory_per_key_set(client, 1000))
        client.flushall()

        others = options.other_conversations
        latency: dict[str, Any] = {}
        asyncio.run(_fill(base, [("c10", 10), ("c100", 100), ("c1000", 1000)], 0, 0))
        latency["with_0_others"] = {n: round(_query_latency_ms(base, f"c{n}"), 2) for n in (10, 100, 1000)}
        asyncio.run(_fill(base, [(f"other-{i}", 1) for i in range(others)], 0, 0))
        latency[f"with_{others}_others"] = {n: round(_query_latency_ms(base, f"c{n}"), 2) for n in (10, 100, 1000)}
        report["customer_query_median_ms"] = latency
        report["redis_keys_total"] = client.dbsize()
        client.flushall()

        report["upload_16x10MiB"] = _upload_peak_rss(base, pid)
    return report


def markdown(report: dict[str, Any]) -> str:
    """The scaling figures as Markdown."""
    lat = report["customer_query_median_ms"]
    columns = list(lat)
    lines = [
        f"- Redis memory per GMS service with three 20-byte keys: **{report['redis_bytes_per_gms_service_3x20B']} B**",
        "- Redis memory per conversation with 2 states and 2 tasks: "
        f"**{report['redis_bytes_per_conversation_2_states_2_tasks']} B**",
        "- Redis memory per customer profile with 5 core attributes and 2 phone records: "
        f"**{report['redis_bytes_per_profile_5_core_2_phones']} B**",
        "",
        "| customer's services | " + " | ".join(f"median query ms, {c.replace('_', ' ')}" for c in columns) + " |",
        "|---:|" + "---:|" * len(columns),
    ]
    for n in (10, 100, 1000):
        lines.append(f"| {n} | " + " | ".join(str(lat[c][n]) for c in columns) + " |")
    up = report["upload_16x10MiB"]
    lines += ["", f"- {up['clients']} clients uploading {up['file_mib']:g} MiB files at once: gmsd RSS "
              f"{up['baseline_rss_mib']} MiB before, **{up['peak_rss_mib']} MiB peak** ({up['ok']} × 200)"]
    return "\n".join(lines)
