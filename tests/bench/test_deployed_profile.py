"""The benchmark's deployed profile is the configuration `k8s/` deploys, section by section."""

from __future__ import annotations

import tomllib

import pytest

from gmsd.bench.harness import BENCH_CONFIG, DEPLOYED_CONFIG
from tests.support.paths import ROOT


def _configmap_toml() -> dict[str, object]:
    """The `gmsd.toml` block of k8s/configmap.yaml (a YAML literal block, read by its indentation)."""
    lines = (ROOT / "k8s" / "configmap.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "gmsd.toml: |") + 1
    indent = len(lines[start]) - len(lines[start].lstrip())
    block = []
    for line in lines[start:]:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        block.append(line[indent:])
    return tomllib.loads("\n".join(block))


@pytest.mark.parametrize("section", ["limits", "redis", "orchestration", "context_services", "auth"])
def test_each_section_that_shapes_a_request_is_the_deployed_one(section: str) -> None:
    deployed = _configmap_toml()
    benched = tomllib.loads(BENCH_CONFIG + DEPLOYED_CONFIG)
    assert section in deployed, f"k8s/configmap.yaml has no [{section}]: update DEPLOYED_CONFIG's list"
    assert benched[section] == deployed[section]


def test_no_other_section_of_the_deployment_is_left_out() -> None:
    # A new section in k8s/configmap.yaml must be benched too (or named here with the reason).
    not_request_shaping = {"services"}  # the bench configures services of its own
    deployed = set(_configmap_toml())
    benched = set(tomllib.loads(DEPLOYED_CONFIG))
    assert deployed - not_request_shaping <= benched
