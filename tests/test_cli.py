"""The kernel's start-up checks: `gmsd` refuses what it cannot run with a message, never a traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gmsd import __version__
from gmsd.config import parse_config
from gmsd.errors import ConfigError
from tests.support.paths import ROOT


def gmsd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m gmsd ARGS` from the source tree; it must stop by itself."""
    return subprocess.run([sys.executable, "-m", "gmsd", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=30, env=env)


def test_python_dash_m_gmsd_is_the_gmsd_command() -> None:
    done = gmsd("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"gmsd {__version__}"


def test_an_unknown_log_level_from_the_environment_is_a_clean_error() -> None:
    import os

    done = gmsd("serve", env={**os.environ, "GMSD_LOG_LEVEL": "bogus"})
    assert done.returncode == 2
    assert "GMSD_LOG_LEVEL='bogus' is not a log level" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_a_port_out_of_range_is_refused(port: str) -> None:
    done = gmsd("serve", "--port", port)
    assert done.returncode == 2
    assert "argument --port" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_misspelt_option_of_a_builtin_service_stops_start_up_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "gmsd.toml"
    config.write_text('[services.photos]\n_type = "builtin"\n_service = "storage"\n_tll = 60\n')
    done = gmsd("serve", "--config", str(config))
    assert done.returncode == 2
    assert "services.photos._tll: not an option of a builtin service" in done.stderr
    with pytest.raises(ConfigError, match=r"services\.photos\._tll"):
        parse_config(config.read_text(), "gmsd.toml")


def test_keys_without_underscore_stay_parameter_overrides() -> None:
    config = parse_config('[services.photos]\n_ttl = 60\nlanguage = "french"\nretries = 3\n', "gmsd.toml")
    service = config.services["photos"]
    assert (service.ttl, service.overrides) == (60, {"language": "french", "retries": "3"})


def test_the_readme_configuration_starts_as_printed(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    assert blocks, "README shows the configuration file"
    for block in blocks:
        config = tmp_path / "readme.toml"
        config.write_text(block)
        parse_config(block, "README.md")  # the same checks as start-up, without binding a port
        done = gmsd("serve", "--config", str(config), "--port", "1", "--workers", "2")
        # It gets past the configuration: the only complaint is the embedded store's single process.
        assert "invalid configuration" not in done.stderr, done.stderr
        assert "needs a Redis URL" in done.stderr or "embedded store" in done.stderr, done.stderr


@pytest.mark.parametrize("command", ["serve", "bench"])
def test_help_shows_the_defaults_of_values_not_of_flags(command: str) -> None:
    done = gmsd(command, "--help", env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    lines: dict[str, str] = {}  # option -> its whole entry (argparse may continue it on the next lines)
    option = ""
    for line in done.stdout.split("options:", 1)[1].splitlines():
        if line.startswith("  -"):
            option = line.split()[0].rstrip(",")
            lines[option] = line
        elif option:
            lines[option] += " " + line.strip()
    assert "(default: 8080)" in lines["--port"] if command == "serve" else "(default: 64)" in lines["--connections"]
    flags = [name for name in lines if name in ("--no-webdis", "--no-references", "--cluster", "--proxy-headers")]
    assert flags and all("(default:" not in lines[name] for name in flags)
