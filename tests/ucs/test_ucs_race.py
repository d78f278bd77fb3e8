"""A unique identification key is a real constraint: 32 concurrent creates (and 32 concurrent
updates) with the same unique phone number against `gmsd serve --workers 2` give exactly one
success and 409s, on one Redis and on a Redis Cluster."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import redis

from tests.conftest import RedisServer, WholeClusterClient
from tests.support.gmsd_process import gmsd_serving
from tests.support.redis_topologies import LocalCluster
from tests.support.ucs_support import CS, PHONE

RACERS = 32
NUMBER = "3145926535"


async def _race(base: str) -> tuple[Counter[int], Counter[int], list[object]]:
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(max_connections=RACERS)) as client:
        assert (await client.post(f"{CS}/metadata/profiles/extensions", json=PHONE)).status_code == 201
        assert (await client.post(f"{CS}/metadata/identification-keys", json={
            "name": "idPhone", "source": "Phone", "attributes": ["PhoneNumber"], "unique": True})).status_code == 201
        creates = await asyncio.gather(*(
            client.post(f"{CS}/profiles", json={"FirstName": f"racer{i}", "Phone": [{"PhoneNumber": NUMBER}]})
            for i in range(RACERS)))
        others = [(await client.post(f"{CS}/profiles", json={"FirstName": f"o{i}"})).json()["customer_id"]
                  for i in range(RACERS)]
        updates = await asyncio.gather(*(
            client.post(f"{CS}/profiles/{cid}/extensions", json={"Phone": {"PhoneNumber": "5551234"}})
            for cid in others))
        found = []
        for number in (NUMBER, "5551234"):
            answer = await client.get(f"{CS}/profiles", params={"Phone.PhoneNumber": number})
            found.append(answer.json())
    return Counter(r.status_code for r in creates), Counter(r.status_code for r in updates), found


def _check(base: str) -> None:
    creates, updates, found = asyncio.run(_race(base))
    assert creates == Counter({201: 1, 409: RACERS - 1}), creates
    assert updates == Counter({200: 1, 409: RACERS - 1}), updates
    assert [len(f) for f in found if isinstance(f, list)] == [1, 1]


def test_concurrent_creates_on_redis(tmp_path: Path, redis_server: RedisServer) -> None:
    redis.Redis(port=redis_server.port).flushall()
    with gmsd_serving(tmp_path, redis_server.url, "", workers=2) as server:
        _check(server.base)


def test_concurrent_creates_on_a_cluster(tmp_path: Path, redis_cluster: LocalCluster) -> None:
    WholeClusterClient(startup_nodes=redis_cluster.startup_nodes).flushall()
    with gmsd_serving(tmp_path, redis_cluster.url, "", workers=2) as server:
        _check(server.base)
