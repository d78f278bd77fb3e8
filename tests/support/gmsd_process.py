"""A real `gmsd serve` for the hardening tests: started from this checkout, stdout to a file (an
unread pipe fills up and stalls the server), its memory read from /proc, always stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

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
