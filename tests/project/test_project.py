"""The project keeps its promises about itself: CI runs README's test command; code is lint-clean."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from tests.support.paths import ROOT


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## On a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, re.S)


def test_readme_gives_exactly_two_commands_and_ci_runs_the_second() -> None:
    commands = readme_commands()
    assert len(commands) == 2, commands
    install_and_start, install_and_test = commands
    assert "gmsd serve" in install_and_start
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert ci_lines[-1] == install_and_test, "the last line of .ci/run must be README's test command"


def test_every_lua_script_has_a_header_naming_keys_argv_and_return() -> None:
    scripts = sorted((ROOT / "lua").glob("*/*.lua"))
    assert scripts
    for script in scripts:
        header = "\n".join(line for line in script.read_text().splitlines() if line.startswith("--"))
        if script.stem == "lib":  # a prelude prepended to scripts, not a script itself
            assert "Not a script by itself" in header, script.name
            continue
        assert "KEYS[1]" in header, script.name
        assert re.search(r"returns?", header, re.I), script.name


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_code_is_lint_and_type_clean(tool: str) -> None:
    if shutil.which(tool) is None and tool == "ruff":
        pytest.fail("ruff is part of the test extra")
    command = [sys.executable, "-m", "ruff", "check", "app", "tests"] if tool == "ruff" else [
        sys.executable, "-m", "mypy"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
