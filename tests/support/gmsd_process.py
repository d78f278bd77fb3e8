"""A real `gmsd serve` for tests, started from this checkout: `GmsdProcess` (hardening: stdout to a
file, since an unread pipe fills up and stalls the server; memory read from /proc), `Served`
(operations: its JSON log lines), `start_gmsd` (a process and its URL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.support.paths import ROOT


class GmsdProcess:
    """`gmsd serve` on a free loopback port with a TOML configuration written for the test."""

    def __init__(self, directory: Path, redis_url: str | None, config: str, workers: int = 2,
                 log_level: str = "warning") -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / f"gmsd-{self.port}.log"
        config_path = directory / f"gmsd-{self.port}.toml"
        config_path.write_text(config)
        command = [sys.executable, "-m", "gmsd.cli", "serve", "--port", str(self.port), "--workers", str(workers),
                   "--config", str(config_path), "--log-level", log_level]
        if redis_url is not None:
            command += ["--redis-url", redis_url]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "GMSD_REDIS_URL": ""},
                                            stdout=log, stderr=subprocess.STDOUT)
        self.workers = workers

    def wait_ready(self, path: str = "/healthz", deadline: float = 30) -> None:
        """Wait until `path` answers 200 and every worker process exists; fail if gmsd exits."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"gmsd exited:\n{self.output()}")
            try:
                processes = 1 if self.workers == 1 else 1 + self.workers
                if httpx.get(self.base + path, timeout=1).status_code == 200 and len(self.pids()) >= processes:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gmsd did not become ready on {path}:\n{self.output()}")

    def pids(self) -> list[int]:
        """The server process and its children (the uvicorn workers)."""
        parent = self.process.pid
        found = [parent]
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # Field 4 is the parent pid; the command name (field 2) may contain spaces: split after it.
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry))
        return found

    def rss_kib(self) -> int:
        """Resident memory of the whole process tree (sum of VmRSS), in KiB."""
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total

    def output(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop within 20 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@contextmanager
def gmsd_serving(directory: Path, redis_url: str | None, config: str, workers: int = 2,
                 log_level: str = "warning") -> Iterator[GmsdProcess]:
    """A started and ready `gmsd serve`, stopped on the way out whatever happened."""
    server = GmsdProcess(directory, redis_url, config, workers, log_level)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


class Served:
    """A `gmsd serve` process started from this checkout, its URL and its stdout."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = tmp_path / f"gmsd-{port}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gmsd.cli", "serve", "--port", str(port), *args],
                cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
            )
        wait_for(lambda: self.answers("/healthz"), f"gmsd did not start:\n{self.output()}", check=self.process)

    def answers(self, path: str) -> bool:
        try:
            return httpx.get(self.base + path, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def lines(self) -> list[dict[str, Any]]:
        """Every line of stdout, each parsed as JSON (a line that is not JSON fails the test)."""
        return [json.loads(line) for line in self.output().splitlines() if line.strip()]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)


def wait_for(condition: Callable[[], bool], message: str, deadline: float = 20,
             check: subprocess.Popen[bytes] | None = None) -> None:
    """Poll `condition` until true; fail with `message` after `deadline` s or if `check` exited."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end or (check is not None and check.poll() is not None):
            pytest.fail(message)
        time.sleep(0.05)


def start_gmsd(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start `gmsd serve` (this checkout's code) on a free port; wait until /healthz answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gmsd.cli", "serve", "--port", str(port), *args],
        cwd=ROOT, env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gmsd exited: {process.stdout.read().decode() if process.stdout else ''}")
        try:
            if httpx.get(base + "/healthz", timeout=0.5).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("gmsd did not start")


def stop(process: subprocess.Popen[bytes]) -> str:
    process.terminate()
    out, _ = process.communicate(timeout=15)
    return out.decode(errors="replace")
