"""`gmsd bench`: reproducible load numbers, side by side with webdis, in one command.

Everything runs on loopback and is started and stopped here: a `redis-server` without
persistence, `gmsd serve` with N workers against it, optionally `webdis` on the same Redis as
the reference, and `wrk` driving each scenario for a fixed duration and concurrency. Each
scenario is run `--runs` times (gmsd and webdis interleaved) and the median run is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

BENCH_CONFIG = """
[services.bench]
_type = "builtin"
_service = "storage"
_ttl = 3600

[services.bench-upload]
_ttl = 120
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

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class ScenarioResult:
    """The median run of a scenario, for gmsd and (S1, S2) for webdis."""

    name: str
    title: str
    gmsd: Run
    webdis: Run | None = None
    runs: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.webdis is None or not self.webdis.rps:
            return None
        return self.gmsd.rps / self.webdis.rps


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
def _process(args: list[str], **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    try:
        yield process
    finally:
        _stop(process)


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


def _gmsd(redis_url: str, workers: int, work: Path, stack: ExitStack) -> tuple[str, int]:
    port = free_port()
    config = work / "bench.toml"
    config.write_text(BENCH_CONFIG)
    # Serve exactly the code that runs this benchmark, whatever is installed elsewhere.
    source = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "GMSD_LOG_LEVEL": "warning",
           "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    process = stack.enter_context(_process(
        [sys.executable, "-m", "gmsd.cli", "serve", "--port", str(port), "--workers", str(workers),
         "--redis-url", redis_url, "--config", str(config), "--log-level", "warning"], env=env))
    base = f"http://127.0.0.1:{port}"
    _wait_http(base + "/healthz", process, "gmsd serve")
    # Every worker must be up before measuring: wait until the process tree stops growing.
    time.sleep(1.0 if workers > 1 else 0.2)
    return base, process.pid


def _process_tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            pids += _process_tree(int(child))
    return pids


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


def _wrk_script(name: str, work: Path) -> Path:
    scripts = resources.files("gmsd.bench.wrk")
    text = (scripts / name).read_text() + "\n" + (scripts / "report.lua").read_text()
    path = work / f"run-{name}"
    path.write_text(text)
    return path


def wrk(url: str, script: Path, args: list[str], seconds: float, connections: int, threads: int,
        cpu_pid: int | None = None) -> Run:
    """Run wrk once; parse the JSON line that report.lua prints."""
    before = cpu_seconds(cpu_pid) if cpu_pid else 0.0
    result = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "10s",
         "-s", str(script), url, "--", *args],
        capture_output=True, text=True, timeout=seconds + 60,
    )
    after = cpu_seconds(cpu_pid) if cpu_pid else 0.0
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
    )


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


SCENARIOS = ("S1", "S2", "S3", "S4new", "S4found", "S5", "S6")


def _seed(base: str, webdis: str | None, nonce: str) -> dict[str, Scenario]:
    with httpx.Client(base_url=base, timeout=30) as client:
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
        "S1": Scenario("S1", "read one key", "get.lua", f"{storage}/firstname", webdis_path="/HGET/bench/firstname"),
        "S2": Scenario("S2", "write three small keys (urlencoded)", "post_form.lua", storage, (storage,),
                       webdis_path="/HSET/bench/firstname/Alexandra/language/french/phone/+1-650-466-9999"),
        "S3": Scenario("S3", "create a service: multipart, 3 fields + 64 KiB file", "create_multipart.lua",
                       "/genesys/1/service/bench-upload", ("/genesys/1/service/bench-upload",)),
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
        # webdis speaks to one server: the reference exists only for a plain redis:// URL.
        reference_port = redis_url.rsplit(":", 1)[1].split("/")[0] if redis_url.startswith("redis://") else None
        webdis = _webdis(int(reference_port), work, stack) if options.webdis and reference_port else None
        base, pid = _gmsd(redis_url, options.workers, work, stack)
        scenarios = _seed(base, webdis, uuid.uuid4().hex[:8])
        for name in chosen:
            scenario = scenarios[name]
            script = _wrk_script(scenario.script, work)
            reference = _wrk_script(scenario.webdis_script, work) if webdis and scenario.webdis_path else None
            load = (options.connections, options.threads)
            if options.warmup:
                wrk(base + scenario.path, script, list(scenario.args), options.warmup, *load)
                if reference and webdis:
                    wrk(webdis + str(scenario.webdis_path), reference, [], options.warmup, *load)
            gmsd_runs: list[Run] = []
            webdis_runs: list[Run] = []
            for _ in range(options.runs):
                gmsd_runs.append(wrk(base + scenario.path, script, list(scenario.args), options.duration, *load,
                                     cpu_pid=pid))
                if reference and webdis:
                    webdis_runs.append(wrk(webdis + str(scenario.webdis_path), reference, [], options.duration, *load))
            result = ScenarioResult(name, scenario.title, _median(gmsd_runs),
                                    _median(webdis_runs) if webdis_runs else None,
                                    runs=[round(r.rps) for r in gmsd_runs])
            results.append(result)
            print(f"  {name}: {result.gmsd.rps:,.0f} req/s", file=sys.stderr)
    return {
        "machine": _machine(),
        "settings": {"workers": options.workers, "connections": options.connections, "threads": options.threads,
                     "duration_s": options.duration, "runs": options.runs, "warmup_s": options.warmup,
                     "redis": "local 6-node Redis Cluster (3 primaries, 3 replicas), no persistence"
                     if options.cluster else options.redis_url or "local redis-server, no persistence"},
        "scenarios": [{**asdict(r), "gmsd": {**asdict(r.gmsd), "rps": round(r.gmsd.rps, 1)},
                       "webdis": {**asdict(r.webdis), "rps": round(r.webdis.rps, 1)} if r.webdis else None,
                       "ratio": round(r.ratio, 3) if r.ratio is not None else None} for r in results],
    }


def markdown(report: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    s = report["settings"]
    lines = [
        f"gmsd workers: {s['workers']}, wrk: {s['connections']} connections / {s['threads']} threads, "
        f"{s['duration_s']:g} s × {s['runs']} runs (median), redis: {s['redis']}",
        "",
        "| scenario | req/s | p50 ms | p90 ms | p99 ms | non-2xx | CPU ms/req | webdis req/s | gmsd ÷ webdis |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["scenarios"]:
        g, w = r["gmsd"], r["webdis"]
        cpu = f"{g['cpu_ms_per_request']:.3f}" if g["cpu_ms_per_request"] is not None else "–"
        reference = f"{w['rps']:,.0f}" if w else "–"
        ratio = f"{r['ratio']:.2f}×" if r["ratio"] is not None else "–"
        lines.append(
            f"| {r['name']} {r['title']} | {g['rps']:,.0f} | {g['p50_ms']:.2f} | {g['p90_ms']:.2f} | "
            f"{g['p99_ms']:.2f} | {g['non2xx'] + g['socket_errors']} | {cpu} | "
            f"{reference} | {ratio} |"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `gmsd bench`."""
    parser.add_argument("--workers", type=int, default=2, help="gmsd worker processes")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (concurrency)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per scenario (0: none)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per scenario; the median is reported")
    parser.add_argument("--scenarios", default="", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--no-webdis", dest="webdis", action="store_false", help="skip the webdis reference")
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
    parser.add_argument("--profiles", type=int, default=0, metavar="N",
                        help="measure identify among N customer profiles instead (e.g. 1000000), and memory "
                        "per profile")
    parser.add_argument("--identify-requests", type=int, default=2000,
                        help="with --profiles: identify requests measured (one at a time)")


def main(options: argparse.Namespace) -> int:
    """Run the benchmark; print the Markdown table; write the JSON file."""
    if options.profiles > 0:
        from gmsd.bench import profiles as bench_profiles

        figures = bench_profiles.run(options)
        path = Path(options.json_path).with_name("profiles.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=2))
        print(bench_profiles.markdown(figures))
        return 0
    if options.scaling:
        from gmsd.bench import scaling as bench_scaling

        figures = bench_scaling.run(options)
        path = Path(options.json_path).with_name("scaling.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=2))
        print(bench_scaling.markdown(figures))
        return 0
    report = run(options)
    path = Path(options.json_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(markdown(report))
    print(f"\n(JSON: {path})", file=sys.stderr)
    bad = sum(r["gmsd"]["non2xx"] + r["gmsd"]["socket_errors"] for r in report["scenarios"])
    return 1 if bad else 0
