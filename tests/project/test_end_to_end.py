"""`gmsd serve` as a real process: the README walk-through, streaming limits, start-up checks."""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import RedisServer
from tests.support.gmsd_process import start_gmsd, stop
from tests.support.paths import ROOT


@pytest.fixture
def served(redis_server: RedisServer) -> Iterator[str]:
    redis.Redis(port=redis_server.port).flushall()
    process, base = start_gmsd("--redis-url", redis_server.url)
    yield base
    stop(process)


def walkthrough() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"## Walk-through\n.*?```sh\n(.*?)```", readme, re.S)
    assert match, "README.md has no walk-through block"
    return match.group(1)


def test_readme_walkthrough_works_as_written(served: str, redis_server: RedisServer, tmp_path: Path) -> None:
    port = served.rsplit(":", 1)[1]
    script = walkthrough().replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr + result.stdout
    lines = result.stdout.splitlines()
    service_id = re.match(r'\{"_id":"([0-9a-f-]{36})","id":"\1"\}', lines[0])
    assert service_id, lines
    assert lines[1] == '{"language":"french"}'  # every string key (the photo is not one)
    assert lines[2] == '{"language":"french"}'  # one key
    assert lines[3].lower().startswith("content-type: image/png")
    assert lines[4:] == ["{}", "{}", "{}"]  # storage write, PUT ttl, DELETE
    assert (tmp_path / "back.png").read_bytes() == (tmp_path / "photo.png").read_bytes()
    # The walk-through ends by deleting the service: nothing is left in Redis.
    assert redis.Redis(port=redis_server.port).dbsize() == 0


def test_streamed_oversize_body_is_refused_before_it_is_read(served: str) -> None:
    service_id = httpx.post(served + "/genesys/1/service/storage").json()["id"]
    port = int(served.rsplit(":", 1)[1])
    chunk = b"x" * (1024 * 1024)
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"POST /genesys/1/service/{service_id}/storage HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            + b"%x\r\na=\r\n" % 2
        )
        try:
            for _ in range(1024):  # up to 1 GiB if the server kept reading
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                if select.select([sock], [], [], 0)[0]:
                    break
            sock.settimeout(5)
            answer = sock.recv(65536)
        except (BrokenPipeError, ConnectionResetError):
            sock.settimeout(5)
            answer = answer or sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent <= 32 * 1024 * 1024, f"the server read {sent} bytes before refusing"
    # Nothing was stored and the server keeps serving.
    assert httpx.get(f"{served}/genesys/1/service/{service_id}/storage").json() == {}


def test_embedded_store_is_announced_and_serves() -> None:
    process, base = start_gmsd()
    try:
        created = httpx.post(base + "/genesys/1/service/request-interaction", data={"k": "v"})
        assert created.status_code == 200
        service_id = created.json()["id"]
        assert httpx.get(f"{base}/genesys/1/service/{service_id}/storage/k").json() == {"k": "v"}
        assert httpx.get(base + "/readyz").status_code == 200
    finally:
        output = stop(process)
    assert "embedded in-process store" in output


def test_embedded_store_refuses_several_workers() -> None:
    result = subprocess.run([sys.executable, "-m", "gmsd.cli", "serve", "--workers", "2"], cwd=ROOT,
                            env={**os.environ, "GMSD_REDIS_URL": ""}, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--workers > 1 needs a Redis URL" in result.stderr


def test_bad_configuration_stops_start_up_naming_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "gmsd.toml"
    path.write_text('[services.callback]\n_type = "ors"\n_service = "http://x/cb"\n_ttl = "ten"\n')
    result = subprocess.run([sys.executable, "-m", "gmsd.cli", "serve", "--config", str(path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert str(path) in result.stderr
    assert "services.callback._ttl" in result.stderr
    assert "Expected `int`, got `str`" in result.stderr


def test_help_explains_every_option() -> None:
    result = subprocess.run([sys.executable, "-m", "gmsd.cli", "serve", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    for option in ("--host", "--port", "--workers", "--redis-url", "--config", "GMSD_REDIS_URL", "GMSD_CONFIG"):
        assert option in result.stdout
