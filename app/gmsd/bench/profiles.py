"""`gmsd bench --profiles N`: identify among N customer profiles (docs/BENCHMARKS.md).

The schema (a `Phone` extension, an identification key on `Phone.PhoneNumber`) is created through
the API of a real `gmsd serve`; then N profiles, each with 5 core attributes and 2 phone records,
are loaded straight into a fresh local Redis in pipelined batches, in exactly the layout gmsd
writes (`gmsd.ucs.schema.index_entries` computes their index members). Redis memory per profile is
`used_memory` after the load minus before, divided by N. Identify is then measured over HTTP,
one request at a time, for random loaded phone numbers: p50, p99 (ids only, and with
`include_profile=yes&extensions=Phone`), and the one index read an identify makes, timed from
the bench straight on Redis (what grows with the number of profiles, if anything did).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import msgspec
import redis
from msgspec import Raw

from gmsd.bench import harness as bench
from gmsd.config import ProfilesOptions
from gmsd.keys import ucs_profile, ucs_tenant
from gmsd.ucs.profiles import core_schema
from gmsd.ucs.schema import ProfileData, entry_prefix, index_entries, schema_from_hash

CS = "/genesys/1/cs"
PHONE = {"name": "Phone", "type": "multi-valued", "unique": ["PhoneNumber"],
         "attributes": [{"name": "PhoneType", "type": "integer"}, {"name": "prefix", "type": "string", "length": 3},
                        {"name": "PhoneNumber", "type": "string", "length": 15},
                        {"name": "description", "type": "string", "length": 32}]}
BATCH = 5000
WARMUP = 1000  # identify requests before measuring (Redis finishes rehashing its grown tables meanwhile)
_encode = msgspec.json.encode


def customer_id(i: int) -> str:
    """The id of loaded profile `i` (16 letters and digits)."""
    return f"B{i:015d}"


def phone(i: int, which: int) -> str:
    """Phone number `which` (0 or 1) of loaded profile `i`."""
    return str(33100000000 + 2 * i + which)


def prepare(base: str) -> None:
    """Create the Phone extension and the idPhone key through the API."""
    with httpx.Client(base_url=base, timeout=60) as client:
        client.post(f"{CS}/metadata/profiles/extensions", json=PHONE).raise_for_status()
        client.post(f"{CS}/metadata/identification-keys",
                    json={"name": "idPhone", "source": "Phone", "attributes": ["PhoneNumber"]}).raise_for_status()


def profile_body(i: int) -> dict[str, Any]:
    """The body of loaded profile `i`: 5 core attributes and 2 phone records."""
    return {"FirstName": f"First{i}", "LastName": f"Last{i}", "PhoneNumber": phone(i, 0),
            "EmailAddress": f"user{i}@example.com", "Title": "Mr",
            "Phone": [{"PhoneType": 0, "prefix": "+33", "PhoneNumber": phone(i, n), "description": "home"}
                      for n in (0, 1)]}


def load(client: redis.Redis, count: int) -> None:
    """Write `count` profiles (5 core attributes, 2 phone records) as gmsd would, in pipelined batches."""
    schema_key, ix, ids, _ = ucs_tenant()
    fields: dict[bytes, bytes] = client.hgetall(schema_key)  # type: ignore[assignment]
    schema = schema_from_hash(core_schema(ProfilesOptions()), fields)
    for start in range(0, count, BATCH):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(start + BATCH, count)):
            cid = customer_id(i)
            body = profile_body(i)
            core = {name: Raw(_encode(value)) for name, value in body.items() if name != "Phone"}
            profile = ProfileData(core, {"phone": Raw(_encode(body["Phone"]))})
            members, _ = index_entries(schema, cid, profile)
            pipe.hset(ucs_profile(cid), mapping={"c": _encode(core), "x:phone": bytes(profile.extensions["phone"]),
                                                 "ix": b"\1".join(members) + b"\1", "v": b"1"})
            pipe.zadd(ix, dict.fromkeys(members, 0))
            pipe.zadd(ids, {cid: 0})
        pipe.execute()


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered), 3),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3)}


def measure(base: str, count: int, requests: int, extra: dict[str, str]) -> dict[str, float]:
    """Identify latency over HTTP for random loaded numbers (each must find exactly its customer)."""
    rng = random.Random(12)
    samples = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for n in range(requests + WARMUP):
            i = rng.randrange(count)
            started = time.perf_counter()
            response = client.get(f"{CS}/profiles", params={"Phone.PhoneNumber": phone(i, n % 2), **extra})
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if response.json()[0]["customer_id"] != customer_id(i):
                raise SystemExit(f"gmsd bench: identify found {response.text[:200]} for profile {i}")
            if n >= WARMUP:  # the first ones warm connections and caches
                samples.append(elapsed)
    return _percentiles(samples)


def index_latency(client: redis.Redis, count: int, requests: int) -> dict[str, float]:
    """The Redis side alone: the one `ZRANGEBYLEX` an identify by phone number sends, timed from here."""
    _, ix, _, _ = ucs_tenant()
    fields: dict[bytes, bytes] = client.hgetall(ucs_tenant()[0])  # type: ignore[assignment]
    schema = schema_from_hash(core_schema(ProfilesOptions()), fields)
    key = schema.ready_keys()[0]
    rng = random.Random(13)
    samples = []
    for n in range(requests + WARMUP):
        prefix = entry_prefix(key, [phone(rng.randrange(count), n % 2)])
        started = time.perf_counter()
        found = client.zrangebylex(ix, b"[" + prefix, b"[" + prefix + b"\xff", 0, 1000)
        elapsed = (time.perf_counter() - started) * 1000
        if len(found) != 1:
            raise SystemExit(f"gmsd bench: the index holds {len(found)} entries for {prefix!r}")
        if n >= WARMUP:
            samples.append(elapsed)
    return _percentiles(samples)


def run(options: argparse.Namespace) -> dict[str, Any]:
    """Load `options.profiles` profiles into a fresh local Redis; the memory and identify figures."""
    count: int = options.profiles
    report: dict[str, Any] = {"machine": bench._machine(), "profiles": count}
    with tempfile.TemporaryDirectory(prefix="gmsd-profiles-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        port = bench._redis(work, stack)
        client = redis.Redis(port=port)
        base, _, _ = bench._gmsd(f"redis://127.0.0.1:{port}/0", options.workers, "minimal", work, stack)
        prepare(base)
        before = int(client.info("memory")["used_memory"])
        started = time.monotonic()
        load(client, count)
        report["load_seconds"] = round(time.monotonic() - started, 1)
        report["redis_bytes_per_profile_5_core_2_phones"] = round(
            (int(client.info("memory")["used_memory"]) - before) / count)
        requests = options.identify_requests
        report["identify"] = measure(base, count, requests, {})
        report["identify_with_profile"] = measure(base, count, requests,
                                                  {"include_profile": "yes", "extensions": "Phone"})
        report["index_read"] = index_latency(client, count, requests)
        report["identify_requests"] = requests
    return report


def markdown(report: dict[str, Any]) -> str:
    """The figures as Markdown."""
    ids, full = report["identify"], report["identify_with_profile"]
    return "\n".join([
        f"- {report['profiles']:,} profiles (5 core attributes, 2 phone records, key on `Phone.PhoneNumber`), "
        f"loaded in {report['load_seconds']} s",
        f"- Redis memory per profile: **{report['redis_bytes_per_profile_5_core_2_phones']} B**",
        f"- identify by phone number ({report['identify_requests']} requests, one at a time): "
        f"p50 **{ids['p50_ms']} ms**, p99 **{ids['p99_ms']} ms**; with `include_profile=yes&extensions=Phone`: "
        f"p50 {full['p50_ms']} ms, p99 {full['p99_ms']} ms",
        f"- the index read alone (`ZRANGEBYLEX` from the bench): p50 {report['index_read']['p50_ms']} ms, "
        f"p99 {report['index_read']['p99_ms']} ms",
    ])
