"""The benchmark harness runs end to end (one second per scenario) so that it cannot rot.

It measures nothing here: it checks that every scenario is served without errors and that the
report has the promised columns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

SCENARIOS = os.environ.get("GMSD_BENCH_SMOKE_SCENARIOS", "S1,S2,S3,S4new,S4found,S5,S6")


def test_bench_runs_every_scenario_without_errors(tmp_path: Path) -> None:
    missing = [tool for tool in ("wrk", "webdis", "redis-server") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} missing: .ci/run installs them")
        pytest.skip(f"{missing} not installed")
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "gmsd.cli", "bench", "--duration", "1", "--warmup", "0", "--runs", "1",
         "--connections", "4", "--threads", "1", "--scenarios", SCENARIOS, "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("| scenario | req/s | p50 ms | p90 ms | p99 ms | non-2xx | CPU ms/req | Redis CPU ms/req | webdis req/s |"
            in result.stdout)
    assert "| scenario | gmsd | Redis | wrk | rest | all | machine busy | Redis's own ceiling req/s |" in result.stdout
    report = json.loads(out.read_text())
    assert report["settings"]["profile"] == "deployed"  # as k8s/ runs it, unless told otherwise
    profile = report["profile"]
    # One access line per request reached the pipe (wrk's requests, the warm-up-free seeding too):
    # authentication let every request through (no non-2xx below) and the log was really on.
    assert profile["access_lines_written"] >= profile["measured_requests"] > 0
    names = [s["name"] for s in report["scenarios"]]
    assert names == SCENARIOS.split(",")
    for scenario in report["scenarios"]:
        assert scenario["gmsd"]["requests"] > 0
        assert scenario["gmsd"]["non2xx"] == 0
        assert scenario["gmsd"]["cpu_ms_per_request"] > 0
        assert scenario["gmsd"]["redis_cpu_ms_per_request"] > 0  # every scenario's requests reach Redis
        assert scenario["gmsd"]["wrk_cpu_ms_per_request"] > 0
        # The whole machine's busy time holds every process's (within a few 10 ms clock ticks, as
        # the two are counted apart), and its share of the cores is a share.
        requests = scenario["gmsd"]["requests"]
        machine_ms = scenario["gmsd"]["machine_cpu_ms_per_request"] * requests
        assert machine_ms >= scenario["gmsd"]["cpu_ms_per_request"] * requests - 50
        assert 0 < scenario["gmsd"]["machine_busy"] <= 1
        assert f"| {scenario['name']} | {scenario['gmsd']['cpu_ms_per_request']:.3f} | " in result.stdout
    s1 = report["scenarios"][0]
    assert s1["webdis"]["requests"] > 0 and s1["ratio"] > 0
    for reference in ("naive", "asgi"):  # the Python references answered S1 without errors
        assert s1[reference]["requests"] > 0 and s1[reference]["non2xx"] == 0
    assert s1["ratio_naive"] > 0


def test_bench_minimal_profile_writes_no_access_lines(tmp_path: Path) -> None:
    missing = [tool for tool in ("wrk", "redis-server") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} missing: .ci/run installs them")
        pytest.skip(f"{missing} not installed")
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "gmsd.cli", "bench", "--profile", "minimal", "--no-webdis", "--no-references",
         "--duration", "1", "--warmup", "0", "--runs", "1", "--connections", "4", "--threads", "1",
         "--scenarios", "S1,S2", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["settings"]["profile"] == "minimal"
    assert report["profile"]["access_lines_written"] is None
    for scenario in report["scenarios"]:
        assert scenario["gmsd"]["requests"] > 0 and scenario["gmsd"]["non2xx"] == 0
        assert scenario["webdis"] is None and scenario["naive"] is None


def test_bench_runs_on_a_local_cluster(tmp_path: Path) -> None:
    if shutil.which("redis-cli") is None or shutil.which("wrk") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-cli or wrk missing: .ci/run installs them")
        pytest.skip("redis-cli or wrk not installed")
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "gmsd.cli", "bench", "--cluster", "--duration", "1", "--warmup", "0", "--runs", "1",
         "--connections", "4", "--threads", "1", "--scenarios", "S1,S4new", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert "Cluster" in report["settings"]["redis"]
    for scenario in report["scenarios"]:
        assert scenario["gmsd"]["requests"] > 0 and scenario["gmsd"]["non2xx"] == 0
        assert scenario["webdis"] is None


def test_bench_maintenance_reports_export_purge_and_sweep_figures(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server missing: .ci/run installs it")
        pytest.skip("redis-server not installed")
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "gmsd.cli", "bench", "--maintenance", "--maintenance-services", "300",
         "--sweep-services", "50", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.with_name("maintenance.json").read_text())
    assert figures["export_content"]["services"] == 300 and figures["export_content"]["chunked"]
    assert figures["purge"]["purged"] == 300 and figures["purge"]["redis_keys_left"] == 0
    assert figures["sweep"]["completed"] == 50
    assert "per 10,000 services" in result.stdout and "per idle service" in result.stdout
