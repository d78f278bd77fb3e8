"""`gmsd bench`: reproducible load numbers, side by side with webdis, in one command.

Everything runs on loopback and is started and stopped here: a `redis-server` without
persistence, `gmsd serve` with N workers against it, optionally `webdis` on the same Redis as
the reference, and `wrk` driving each scenario for a fixed duration and concurrency. Each
scenario is run `--runs` times (every target interleaved) and the median run is reported.

gmsd runs as `k8s/` deploys it unless `--profile minimal` is given: the `[limits]`, `[redis]`,
`[auth]` and `[context_services]` of `k8s/configmap.yaml`, an access line per request at `info`
written to a pipe that the harness drains, metrics on, Basic authentication on (wrk sends the
header). For S1 and S2 two more references run beside webdis (`gmsd.bench.references`): the
smallest Starlette + redis-py app that answers the same request, and a bare ASGI app that
answers without Redis (where Python's ceiling is).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import redis

from gmsd.keys import GMS_DATA_MATCH, GMS_NAME_FIELD, gms_data_service, gms_service

BENCH_CONFIG = """
[services.bench]
_type = "builtin"
_service = "storage"
_ttl = 3600

[services.bench-upload]
_ttl = 120
"""

# The sections of k8s/configmap.yaml that shape what a request costs (tests/bench checks that
# they stay equal to the deployed ones).
DEPLOYED_CONFIG = """
[limits]
body_bytes = 16777216
file_bytes = 10485760
fields = 1000
key_bytes = 4096
header_bytes = 65536
header_timeout = 10.0
body_timeout = 60.0
keep_alive_timeout = 5
max_concurrent_requests = 256

[redis]
timeout = 2.0
max_connections = 64

[orchestration]
timeout = 10.0

[context_services]
default_ttl = "7d"
export_dir = "/var/lib/gmsd/export"
auto_complete_enabled = false

[auth]
metrics = "open"
"""

PROFILES = ("deployed", "minimal")
BENCH_USERNAME, BENCH_PASSWORD = "bench", "bench-password"
BENCH_AUTHORIZATION = "Basic " + base64.b64encode(f"{BENCH_USERNAME}:{BENCH_PASSWORD}".encode()).decode()

# Prepended to every wrk script of the deployed profile: the Authorization header on every
# request, also those a script formats with headers of its own (wrk.format then ignores wrk.headers).
_WRK_AUTHORIZATION = """
local gmsd_authorization = "%s"
wrk.headers["Authorization"] = gmsd_authorization
local gmsd_format = wrk.format
wrk.format = function(method, path, headers, body)
  headers = headers or wrk.headers
  headers["Authorization"] = gmsd_authorization
  return gmsd_format(method, path, headers, body)
end
"""

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One wrk run of one target."""

    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    cpu_ms_per_request: float | None = None
    redis_cpu_ms_per_request: float | None = None  # redis-server's CPU (INFO cpu), when it is one server
    wrk_cpu_ms_per_request: float | None = None  # the load generator's own CPU
    machine_cpu_ms_per_request: float | None = None  # every core's busy time (/proc/stat), kernel included
    machine_busy: float | None = None  # busy share of all cores during the run (1.0: the machine was full)
    log_lines: int | None = None  # access lines gmsd wrote during the run (deployed profile)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


REFERENCES = ("webdis", "naive", "asgi")  # webdis; naive Starlette + redis-py; a bare ASGI app


@dataclass
class ScenarioResult:
    """The median run of a scenario, for gmsd and (S1, S2) for each reference."""

    name: str
    title: str
    gmsd: Run
    references: dict[str, Run] = field(default_factory=dict)
    runs: list[float] = field(default_factory=list)

    def ratio(self, reference: str) -> float | None:
        """gmsd's requests/s divided by the reference's, if it ran."""
        other = self.references.get(reference)
        if other is None or not other.rps:
            return None
        return self.gmsd.rps / other.rps


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gmsd bench: {what} exited with code {process.returncode}")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"gmsd bench: {what} did not answer at {url}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def _process(args: list[str], stdout: int = subprocess.DEVNULL, **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(args, stdout=stdout, stderr=subprocess.DEVNULL, **kwargs)
    try:
        yield process
    finally:
        _stop(process)


class LogDrain:
    """Reads a process's stdout to the end, as a log collector would, counting its lines."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self.fd = process.stdout.fileno()
        self.lines = 0
        self.bytes = 0
        self.thread = threading.Thread(target=self._drain, name="gmsd-bench-log-drain", daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while chunk := os.read(self.fd, 1 << 16):
            self.lines += chunk.count(b"\n")
            self.bytes += len(chunk)


def _redis(work: Path, stack: ExitStack) -> int:
    port = free_port()
    process = stack.enter_context(_process(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(work)]))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("gmsd bench: redis-server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("gmsd bench: redis-server did not start")


def _webdis(redis_port: int, work: Path, stack: ExitStack) -> str:
    port = free_port()
    config = {
        "redis_host": "127.0.0.1", "redis_port": redis_port, "http_host": "127.0.0.1", "http_port": port,
        "threads": 2, "pool_size": 20, "daemonize": False, "database": 0, "verbosity": 0,
        "logfile": str(work / "webdis.log"),
    }
    path = work / "webdis.json"
    path.write_text(json.dumps(config))
    process = stack.enter_context(_process(["webdis", str(path)]))
    base = f"http://127.0.0.1:{port}"
    _wait_http(base + "/PING", process, "webdis")
    return base


def _source_env(**extra: str) -> dict[str, str]:
    # Serve exactly the code that runs this benchmark, whatever is installed elsewhere.
    source = str(Path(__file__).resolve().parents[2])
    # The profile decides about authentication, not the shell the benchmark runs in.
    environ = {name: value for name, value in os.environ.items()
               if name not in ("GMSD_AUTH_USERNAME", "GMSD_AUTH_PASSWORD", "GMSD_AUTH_FILE")}
    return {**environ, **extra, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}


def _gmsd(redis_url: str, workers: int, profile: str, work: Path,
          stack: ExitStack) -> tuple[str, int, LogDrain | None]:
    port = free_port()
    config = work / "bench.toml"
    deployed = profile == "deployed"
    # The pod's export volume is a folder of the benchmark's own here.
    deployed_config = DEPLOYED_CONFIG.replace('"/var/lib/gmsd/export"', json.dumps(str(work / "export")))
    config.write_text(BENCH_CONFIG + (deployed_config if deployed else ""))
    level = "info" if deployed else "warning"
    credentials = {"GMSD_AUTH_USERNAME": BENCH_USERNAME, "GMSD_AUTH_PASSWORD": BENCH_PASSWORD} if deployed else {}
    process = stack.enter_context(_process(
        [sys.executable, "-m", "gmsd.cli", "serve", "--port", str(port), "--workers", str(workers),
         "--redis-url", redis_url, "--config", str(config), "--log-level", level],
        stdout=subprocess.PIPE if deployed else subprocess.DEVNULL,
        env=_source_env(GMSD_LOG_LEVEL=level, **credentials)))
    drain = LogDrain(process) if deployed else None
    base = f"http://127.0.0.1:{port}"
    _wait_http(base + "/healthz", process, "gmsd serve")
    # Every worker must be up before measuring: wait until the process tree stops growing.
    time.sleep(1.0 if workers > 1 else 0.2)
    return base, process.pid, drain


def _reference_app(app: str, redis_url: str, workers: int, stack: ExitStack) -> str:
    """A reference app of gmsd.bench.references under uvicorn, as lean as uvicorn runs."""
    port = free_port()
    process = stack.enter_context(_process(
        [sys.executable, "-m", "uvicorn", f"gmsd.bench.references:{app}", "--port", str(port),
         "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
        env=_source_env(BENCH_REFERENCE_REDIS_URL=redis_url)))
    base = f"http://127.0.0.1:{port}"
    _wait_http(base + "/healthz", process, f"the {app} reference")
    time.sleep(1.0 if workers > 1 else 0.2)
    return base


def _process_tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            pids += _process_tree(int(child))
    return pids


def rss_bytes(pid: int) -> int:
    """Resident memory of `pid` and all its descendants, from /proc."""
    total = 0
    for each in _process_tree(pid):
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class PeakRss:
    """Samples the RSS of a process tree in a thread while the `with` block runs: `baseline`
    (at entry) and `peak` bytes."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.pid, self.interval = pid, interval
        self.baseline = self.peak = rss_bytes(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def cpu_seconds(pid: int) -> float:
    """user + sys CPU seconds of `pid` and all its descendants, from /proc."""
    total = 0
    for each in _process_tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / _TICKS


def redis_cpu_seconds(redis_url: str) -> float | None:
    """used_cpu_user + used_cpu_sys of the one Redis at `redis_url` (None for a cluster or Sentinel)."""
    if not redis_url.startswith(("redis://", "unix://")):
        return None
    client = redis.Redis.from_url(redis_url)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot, every core, from /proc/stat."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    every = sum(ticks)  # user nice system idle iowait irq softirq steal (guest time is inside user)
    return (every - ticks[3] - ticks[4]) / _TICKS, every / _TICKS


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wrk_script(name: str, work: Path, authorization: str | None = None) -> Path:
    scripts = resources.files("gmsd.bench.wrk")
    text = (scripts / name).read_text() + "\n" + (scripts / "report.lua").read_text()
    if authorization is not None:
        text = _WRK_AUTHORIZATION % authorization + text
    path = work / f"run-{'auth-' if authorization else ''}{name}"
    path.write_text(text)
    return path


def wrk(url: str, script: Path, args: list[str], seconds: float, connections: int, threads: int,
        cpu_pid: int | None = None, redis_url: str | None = None) -> Run:
    """Run wrk once; parse the JSON line that report.lua prints. With `cpu_pid`, the CPU of that
    process tree per request; with `redis_url`, that of the Redis server too. wrk's own CPU and
    the whole machine's are measured on every run."""
    before = cpu_seconds(cpu_pid) if cpu_pid else 0.0
    redis_before = redis_cpu_seconds(redis_url) if redis_url else None
    machine_before, children_before = machine_cpu_seconds(), _children_cpu_seconds()
    result = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "10s",
         "-s", str(script), url, "--", *args],
        capture_output=True, text=True, timeout=seconds + 60,
    )
    # wrk was waited for: RUSAGE_CHILDREN now holds its CPU (no other child ends meanwhile).
    machine_after, children_after = machine_cpu_seconds(), _children_cpu_seconds()
    after = cpu_seconds(cpu_pid) if cpu_pid else 0.0
    redis_after = redis_cpu_seconds(redis_url) if redis_url else None
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise SystemExit(f"gmsd bench: wrk failed: {result.stderr or result.stdout}")
    data = json.loads(line[len("WRK_JSON "):])
    requests = data["requests"]
    return Run(
        requests=requests, seconds=data["duration_us"] / 1e6, non2xx=data["non2xx"],
        socket_errors=data["socket_errors"], p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        cpu_ms_per_request=((after - before) * 1000 / requests) if cpu_pid and requests else None,
        redis_cpu_ms_per_request=((redis_after - redis_before) * 1000 / requests)
        if redis_after is not None and redis_before is not None and requests else None,
        wrk_cpu_ms_per_request=((children_after - children_before) * 1000 / requests) if requests else None,
        machine_cpu_ms_per_request=((machine_after[0] - machine_before[0]) * 1000 / requests) if requests else None,
        machine_busy=((machine_after[0] - machine_before[0]) / (machine_after[1] - machine_before[1]))
        if machine_after[1] > machine_before[1] else None,
    )


async def drop_services(client: Any, name: str) -> int:
    """Delete every GMS service named `name` from the store of `client`; how many there were.

    S3 stores 64 KiB per request: without this, each run would start with the gigabytes the
    runs before it stored (services live `_ttl` = 120 s), and measure a fuller store than the
    last. On a virtual machine that is not only slower for Redis but different in kind: memory
    the guest never touched before costs the host a page fault of its own (here a 64 KiB HSET
    went from 80 to 284 µs of Redis CPU once Redis passed 3 GB; docs/BENCHMARKS.md).
    """
    dropped = 0
    batch: list[bytes] = []
    async for key in client.scan_iter(match=GMS_DATA_MATCH, count=1000):
        batch.append(key)
        if len(batch) == 500:
            dropped += await _drop_named(client, batch, name.encode())
            batch = []
    return dropped + await _drop_named(client, batch, name.encode())


async def _drop_named(client: Any, data_keys: list[bytes], name: bytes) -> int:
    if not data_keys:
        return 0
    reads = client.pipeline(transaction=False)
    for key in data_keys:
        reads.hget(key, GMS_NAME_FIELD)
    names = await reads.execute()
    ids = [gms_data_service(key.decode()) for key, found in zip(data_keys, names, strict=True) if found == name]
    if ids:
        deletes = client.pipeline(transaction=False)
        for service_id in ids:
            deletes.delete(*gms_service(service_id))
        await deletes.execute()
    return len(ids)


def _drop_created(redis_url: str, name: str) -> None:
    """`drop_services` on the bench's store, outside the measured time."""
    from gmsd.backend.connect import connect  # only S3 needs a client of its own
    from gmsd.config import RedisOptions

    async def drop() -> None:
        client = connect(redis_url, RedisOptions(timeout=30.0))
        try:
            await drop_services(client, name)
        finally:
            await client.aclose()

    asyncio.run(drop())


def _median(runs: list[Run]) -> Run:
    ordered = sorted(runs, key=lambda r: r.rps)
    return ordered[len(ordered) // 2]


@dataclass(frozen=True)
class Scenario:
    """One scenario: what gmsd is asked, and what webdis is asked as the reference."""

    name: str
    title: str
    script: str
    path: str
    args: tuple[str, ...] = ()
    webdis_path: str | None = None
    webdis_script: str = "get.lua"
    references_too: bool = False  # the naive Starlette and bare ASGI apps answer the same request
    # The configured service whose services each request creates: deleted after every run (see
    # `drop_services`), so that every run of the scenario starts from the same store.
    creates: str | None = None


SCENARIOS = ("S1", "S2", "S3", "S4new", "S4found", "S5", "S6")


def _seed(base: str, webdis: str | None, nonce: str, auth: tuple[str, str] | None) -> dict[str, Scenario]:
    with httpx.Client(base_url=base, timeout=30, auth=auth) as client:
        created = client.post("/genesys/1/service/bench", data={"firstname": "Alexandra", "language": "french"})
        created.raise_for_status()
        service_id = created.json()["id"]
        area = client.post("/genesys/1/storage/3600", data={"firstname": "Alexandra"})
        area.raise_for_status()
        area_path = f"/genesys/1/storage/{area.json()['id']}"
        customer = f"bench-{nonce}-s5"
        for i in range(20):
            client.post("/genesys/1/cs/services_composite/start", json={"services": [{
                "service": {"customer_id": customer, "service_type": f"Type{i}", "media_type": "voice"},
                "state": {"state_type": "Waiting"}}]})
    if webdis is not None:
        httpx.get(f"{webdis}/HSET/bench/firstname/Alexandra", timeout=10).raise_for_status()
    storage = f"/genesys/1/service/{service_id}/storage"
    return {
        "S1": Scenario("S1", "read one key", "get.lua", f"{storage}/firstname", webdis_path="/HGET/bench/firstname",
                       references_too=True),
        "S2": Scenario("S2", "write three small keys (urlencoded)", "post_form.lua", storage, (storage,),
                       webdis_path="/HSET/bench/firstname/Alexandra/language/french/phone/+1-650-466-9999",
                       references_too=True),
        "S3": Scenario("S3", "create a service: multipart, 3 fields + 64 KiB file", "create_multipart.lua",
                       "/genesys/1/service/bench-upload", ("/genesys/1/service/bench-upload",),
                       creates="bench-upload"),
        "S4new": Scenario("S4new", "composite start, new customer (create path)", "composite_start.lua",
                          "/genesys/1/cs/services_composite/start", ("new", nonce)),
        "S4found": Scenario("S4found", "composite start, same customer (found path)", "composite_start.lua",
                            "/genesys/1/cs/services_composite/start", ("same", nonce)),
        "S5": Scenario("S5", "customer query, 20 services, active_states=true", "get.lua",
                       f"/genesys/1/cs/customers/{customer}/services?active_states=true"),
        "S6": Scenario("S6", "Storage API write + read pair (alternating; pairs/s = req/s ÷ 2)", "storage_pair.lua",
                       area_path, (area_path,)),
    }


def _machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "kernel": os.uname().release, "python": sys.version.split()[0]}


def run(options: argparse.Namespace) -> dict[str, Any]:
    """Start everything, run the chosen scenarios, stop everything; the results as a dict."""
    needed = ["wrk", "redis-server"] + (["webdis"] if options.webdis else [])
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"gmsd bench: missing {', '.join(missing)} (apt-get install -y wrk webdis redis-server)")
    chosen = options.scenarios.split(",") if options.scenarios else list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        raise SystemExit(f"gmsd bench: unknown scenario {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    deployed = options.profile == "deployed"
    results: list[ScenarioResult] = []
    with tempfile.TemporaryDirectory(prefix="gmsd-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        if options.cluster:
            from gmsd.bench.local_redis import LocalCluster

            cluster = LocalCluster(work / "cluster")
            cluster.start()
            stack.callback(cluster.stop)
            redis_url = cluster.url
        else:
            redis_url = options.redis_url or f"redis://127.0.0.1:{_redis(work, stack)}/0"
        # webdis speaks to one server: the references exist only for a plain redis:// URL.
        reference_port = redis_url.rsplit(":", 1)[1].split("/")[0] if redis_url.startswith("redis://") else None
        webdis = _webdis(int(reference_port), work, stack) if options.webdis and reference_port else None
        apps: dict[str, str] = {}
        if options.references and reference_port and any(name in ("S1", "S2") for name in chosen):
            for app in ("naive", "asgi"):
                apps[app] = _reference_app(app, redis_url, options.workers, stack)
        base, pid, drain = _gmsd(redis_url, options.workers, options.profile, work, stack)
        auth = (BENCH_USERNAME, BENCH_PASSWORD) if deployed else None
        scenarios = _seed(base, webdis, uuid.uuid4().hex[:8], auth)
        measured_requests = 0
        lines_before = drain.lines if drain else 0
        for name in chosen:
            scenario = scenarios[name]
            script = _wrk_script(scenario.script, work, BENCH_AUTHORIZATION if deployed else None)
            # Every target of the scenario: (url, script, args), gmsd first.
            targets: dict[str, tuple[str, Path, list[str]]] = {}
            if webdis and scenario.webdis_path:
                targets["webdis"] = (webdis + scenario.webdis_path, _wrk_script(scenario.webdis_script, work), [])
            if scenario.references_too:
                for app, app_base in apps.items():
                    targets[app] = (app_base + scenario.path, _wrk_script(scenario.script, work), list(scenario.args))
            load = (options.connections, options.threads)
            if options.warmup:
                wrk(base + scenario.path, script, list(scenario.args), options.warmup, *load)
                for url, reference, args in targets.values():
                    wrk(url, reference, args, options.warmup, *load)
            if scenario.creates:
                _drop_created(redis_url, scenario.creates)
            gmsd_runs: list[Run] = []
            reference_runs: dict[str, list[Run]] = {target: [] for target in targets}
            for _ in range(options.runs):
                before = drain.lines if drain else 0
                gmsd_runs.append(wrk(base + scenario.path, script, list(scenario.args), options.duration, *load,
                                     cpu_pid=pid, redis_url=redis_url))
                if drain:
                    gmsd_runs[-1].log_lines = drain.lines - before
                measured_requests += gmsd_runs[-1].requests
                if scenario.creates:
                    _drop_created(redis_url, scenario.creates)
                for target, (url, reference, args) in targets.items():
                    reference_runs[target].append(wrk(url, reference, args, options.duration, *load))
            result = ScenarioResult(name, scenario.title, _median(gmsd_runs),
                                    {target: _median(runs) for target, runs in reference_runs.items()},
                                    runs=[round(r.rps) for r in gmsd_runs])
            results.append(result)
            print(f"  {name}: {result.gmsd.rps:,.0f} req/s", file=sys.stderr)
        access_lines = (drain.lines - lines_before) if drain else None
    profile = {
        "name": options.profile,
        "log": "info, one JSON access line per request to a pipe the harness drains" if deployed
        else "warning (no access lines)",
        "auth": "Basic, on every request" if deployed else "off",
        "config": "k8s/configmap.yaml's [limits], [redis], [auth], [context_services]" if deployed
        else "defaults",
        "access_lines_written": access_lines, "measured_requests": measured_requests,
    }
    return {
        "machine": _machine(),
        "settings": {"profile": options.profile, "workers": options.workers, "connections": options.connections,
                     "threads": options.threads, "duration_s": options.duration, "runs": options.runs,
                     "warmup_s": options.warmup,
                     "redis": "local 6-node Redis Cluster (3 primaries, 3 replicas), no persistence"
                     if options.cluster else options.redis_url or "local redis-server, no persistence"},
        "profile": profile,
        "scenarios": [{"name": r.name, "title": r.title, "runs": r.runs,
                       "gmsd": {**asdict(r.gmsd), "rps": round(r.gmsd.rps, 1)},
                       **{target: ({**asdict(r.references[target]), "rps": round(r.references[target].rps, 1)}
                                   if target in r.references else None) for target in REFERENCES},
                       "ratio": _rounded(r.ratio("webdis")), "ratio_naive": _rounded(r.ratio("naive")),
                       "ratio_asgi": _rounded(r.ratio("asgi"))} for r in results],
    }


def _rounded(ratio: float | None) -> float | None:
    return round(ratio, 3) if ratio is not None else None


def markdown(report: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    s = report["settings"]
    lines = [
        f"profile: {s['profile']}, gmsd workers: {s['workers']}, wrk: {s['connections']} connections / "
        f"{s['threads']} threads, {s['duration_s']:g} s × {s['runs']} runs (median), redis: {s['redis']}",
        "",
        "| scenario | req/s | p50 ms | p90 ms | p99 ms | non-2xx | CPU ms/req | Redis CPU ms/req | webdis req/s "
        "| gmsd ÷ webdis | naive Starlette req/s | gmsd ÷ naive | bare ASGI req/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def rps(run: dict[str, Any] | None) -> str:
        return f"{run['rps']:,.0f}" if run else "–"

    def times(ratio: float | None) -> str:
        return f"{ratio:.2f}×" if ratio is not None else "–"

    for r in report["scenarios"]:
        g = r["gmsd"]
        cpu = f"{g['cpu_ms_per_request']:.3f}" if g["cpu_ms_per_request"] is not None else "–"
        redis_cpu = g.get("redis_cpu_ms_per_request")
        redis_cpu_text = f"{redis_cpu:.3f}" if redis_cpu is not None else "–"
        lines.append(
            f"| {r['name']} {r['title']} | {g['rps']:,.0f} | {g['p50_ms']:.2f} | {g['p90_ms']:.2f} | "
            f"{g['p99_ms']:.2f} | {g['non2xx'] + g['socket_errors']} | {cpu} | {redis_cpu_text} | "
            f"{rps(r['webdis'])} | {times(r['ratio'])} | {rps(r['naive'])} | {times(r['ratio_naive'])} | "
            f"{rps(r['asgi'])} |"
        )
    lines += ["", "Where the CPU went (ms per request; `rest`: the kernel's share not charged to these "
              "processes, the log drain and anything else on the machine):", "",
              "| scenario | gmsd | Redis | wrk | rest | all | machine busy | Redis's own ceiling req/s |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["scenarios"]:
        lines.append(_cpu_row(r["name"], r["gmsd"]))
    profile = report.get("profile", {})
    if profile.get("access_lines_written") is not None:
        lines += ["", f"access log: {profile['access_lines_written']:,} lines written for "
                  f"{profile['measured_requests']:,} measured requests (plus warm-up)"]
    return "\n".join(lines)


def _cpu_row(name: str, run: dict[str, Any]) -> str:
    """One row of the CPU table: who spent the machine's time, and what Redis alone could serve
    (it runs commands on one thread: 1 / its CPU per request, with a whole core to itself)."""
    def ms(value: float | None) -> str:
        return f"{value:.3f}" if value is not None else "–"

    parts = [run.get(key) for key in ("cpu_ms_per_request", "redis_cpu_ms_per_request", "wrk_cpu_ms_per_request")]
    every = run.get("machine_cpu_ms_per_request")
    rest = every - sum(part for part in parts if part is not None) if every is not None else None
    if rest is not None and -0.0005 < rest < 0:  # clock ticks counted apart: not a negative time
        rest = 0.0
    busy = run.get("machine_busy")
    redis_cpu = parts[1]
    ceiling = f"{1000 / redis_cpu:,.0f}" if redis_cpu else "–"
    return (f"| {name} | {' | '.join(ms(part) for part in parts)} | {ms(rest)} | {ms(every)} | "
            f"{f'{busy:.0%}' if busy is not None else '–'} | {ceiling} |")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `gmsd bench`."""
    parser.add_argument("--workers", type=int, default=2, help="gmsd worker processes")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (concurrency)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per scenario (0: none)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per scenario; the median is reported")
    parser.add_argument("--scenarios", default="", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--profile", choices=PROFILES, default="deployed",
                        help="deployed (default): as k8s/ runs gmsd (access log at info, metrics, Basic auth, "
                        "k8s/configmap.yaml's limits); minimal: no access lines, no auth, default limits")
    parser.add_argument("--no-webdis", dest="webdis", action="store_false", help="skip the webdis reference")
    parser.add_argument("--no-references", dest="references", action="store_false",
                        help="skip the naive Starlette and bare ASGI references of S1 and S2")
    parser.add_argument("--cluster", action="store_true",
                        help="run against a 6-node Redis Cluster started on loopback (no webdis reference)")
    parser.add_argument("--redis-url", default=None,
                        help="use this Redis instead of starting one (it is written to; never a production one)")
    parser.add_argument("--json", dest="json_path", default="bench-results/bench.json",
                        help="where to write the JSON results")
    parser.add_argument("--scaling", action="store_true",
                        help="measure the scaling figures instead (memory per service and conversation, "
                        "query latency among many conversations, RSS under 16 concurrent 10 MiB uploads)")
    parser.add_argument("--other-conversations", type=int, default=100_000,
                        help="with --scaling: conversations of other customers in Redis during the query test")
    parser.add_argument("--maintenance", action="store_true",
                        help="measure Context Services maintenance instead (RSS of a streamed export with "
                        "content, purge time, auto-complete sweep cost per idle service)")
    parser.add_argument("--maintenance-services", type=int, default=100_000,
                        help="with --maintenance: conversations exported and then purged")
    parser.add_argument("--sweep-services", type=int, default=10_000,
                        help="with --maintenance: idle services the auto-complete sweeper completes (0: skip)")
    parser.add_argument("--profiles", type=int, default=0, metavar="N",
                        help="measure identify among N customer profiles instead (e.g. 1000000), and memory "
                        "per profile")
    parser.add_argument("--identify-requests", type=int, default=2000,
                        help="with --profiles: identify requests measured (one at a time)")


def main(options: argparse.Namespace) -> int:
    """Run the benchmark; print the Markdown table; write the JSON file."""
    # The figure modes: each module's run() and markdown(), its JSON beside the main one.
    figure_mode = ("maintenance" if options.maintenance else "profiles" if options.profiles > 0
                   else "scaling" if options.scaling else None)
    if figure_mode is not None:
        module = importlib.import_module(f"gmsd.bench.{figure_mode}")
        figures = module.run(options)
        path = Path(options.json_path).with_name(f"{figure_mode}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=2))
        print(module.markdown(figures))
        return 0
    report = run(options)
    path = Path(options.json_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(markdown(report))
    print(f"\n(JSON: {path})", file=sys.stderr)
    bad = sum(r["gmsd"]["non2xx"] + r["gmsd"]["socket_errors"] for r in report["scenarios"])
    return 1 if bad else 0
