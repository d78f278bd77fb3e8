"""`gmsd bench --profiles N` runs end to end with a small N (it measures nothing here): the bulk
load writes what gmsd reads, since every identify must find exactly its customer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT


def test_the_profiles_bench_runs(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server missing: .ci/run installs it")
        pytest.skip("redis-server not installed")
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "gmsd.cli", "bench", "--profiles", "2000", "--identify-requests", "20",
         "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "profiles.json").read_text())
    assert report["profiles"] == 2000
    assert report["redis_bytes_per_profile_5_core_2_phones"] > 0
    for figure in ("identify", "identify_with_profile"):
        assert {"p50_ms", "p99_ms"} <= set(report[figure])
    assert "Redis memory per profile" in result.stdout
