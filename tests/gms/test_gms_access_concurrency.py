"""Access numbers under concurrency, against a real `gmsd serve --workers 2` on a real Redis and on
the 6-node Redis Cluster: a locked number is never handed to two services."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import WholeClusterClient
from tests.support.gmsd_process import GmsdProcess, gmsd_serving

NUMBERS = [f"80055501{i:02d}" for i in range(8)]
CONFIG = f"""
[resources.DNIS]
numbers = {NUMBERS!r}
locking = true
booking_expiration_timeout = 600

[services.request-interaction]
_service = "request-interaction"
_ttl = 600

[services.match-interaction]
_service = "match-interaction"
_return_user_data = true
"""


@pytest.fixture(params=["redis", "cluster"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GmsdProcess]:
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        redis.Redis(port=server.port).flushall()
        url = server.url
    else:
        cluster = request.getfixturevalue("redis_cluster")
        WholeClusterClient(startup_nodes=cluster.startup_nodes).flushall()
        url = cluster.url
    with gmsd_serving(tmp_path, url, CONFIG, workers=2) as server:
        yield server


async def _burst(base: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        return await asyncio.gather(*(client.post("/genesys/1/service/request-interaction", data={"caller": str(i)})
                                      for i in range(count)))


def test_64_concurrent_requests_on_8_locked_numbers(served: GmsdProcess) -> None:
    answers = asyncio.run(_burst(served.base, 64))
    won = [a.json() for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 503]
    assert (len(won), len(refused)) == (8, 56)
    assert sorted(a["_access_number"] for a in won) == sorted(NUMBERS)
    assert {r.json()["message"] for r in refused} == {"no access number available in resource group DNIS"}
    # Each number matches exactly the service it was given to, with that service's data.
    with httpx.Client(base_url=served.base, timeout=10) as client:
        for answer in won:
            matched = client.post("/genesys/1/service/match-interaction",
                                  data={"_access_number": answer["_access_number"]})
            assert matched.status_code == 200
            assert matched.json()["_id"] == answer["id"]
            stored = client.get(f"/genesys/1/storage/{matched.json()['_data_id']}").json()
            assert stored == {"caller": matched.json()["caller"]}
        # All released: eight more get numbers.
        again = [client.post("/genesys/1/service/request-interaction") for _ in range(9)]
        assert [a.status_code for a in again] == [200] * 8 + [503]
    assert "Traceback" not in served.output()


def test_custom_storage_with_the_gms_user_header_over_real_http(served: GmsdProcess) -> None:
    with httpx.Client(base_url=served.base, timeout=10) as client:
        stored = client.post("/genesys/1/storage/custom/chat-1/600", data={"state": "open"},
                             headers={"gms_user": "alice"})
        assert stored.json() == {"id": "chat-1"}
        assert client.get("/genesys/1/storage/custom/chat-1", headers={"gms_user": "alice"}).json() == {
            "state": "open"}
        assert client.get("/genesys/1/storage/custom/chat-1", headers={"gms_user": "bob"}).status_code == 404
        assert client.get("/genesys/1/storage/custom/chat-1").status_code == 400
