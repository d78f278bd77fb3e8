"""Between runs of S3 the bench deletes the services the run created, and nothing else."""

from __future__ import annotations

import asyncio

from gmsd.bench.harness import BENCH_CONFIG, drop_services
from tests.conftest import AppFactory, Backend

CONFIG = BENCH_CONFIG + """
[services.kept]
_ttl = 600
"""


def test_only_the_named_services_are_deleted(make_client: AppFactory, backend: Backend) -> None:
    client = make_client(CONFIG)
    uploads = [
        client.post("/genesys/1/service/bench-upload", data={"firstname": "Alexandra"},
                    files={"photo": ("photo.jpg", b"\xff\xd8" * 100, "image/jpeg")}).json()["id"]
        for _ in range(3)
    ]
    kept = client.post("/genesys/1/service/kept", data={"firstname": "Kept"}).json()["id"]
    area = client.post("/genesys/1/storage/600", data={"firstname": "Area"}).json()["id"]

    async def drop() -> int:
        store = backend.make_async()
        try:
            return await drop_services(store, "bench-upload")
        finally:
            await store.aclose()

    assert asyncio.run(drop()) == 3
    for service_id in uploads:
        assert client.get(f"/genesys/1/service/{service_id}/storage").status_code == 404
        assert backend.sync.keys(f"gms:{{{service_id}}}:*") == []
    assert client.get(f"/genesys/1/service/{kept}/storage").json() == {"firstname": "Kept"}
    assert client.get(f"/genesys/1/storage/{area}").json() == {"firstname": "Area"}
    assert asyncio.run(drop()) == 0
