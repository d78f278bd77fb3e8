"""Process settings, read once at start-up from the environment (the CLI writes its flags there
so that every uvicorn worker process sees the same values)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from gmsd.config import Config, load_config
from gmsd.web.auth import Credentials, load_credentials

REDIS_URL = "GMSD_REDIS_URL"
CONFIG_PATH = "GMSD_CONFIG"
SHUTDOWN_DELAY = "GMSD_SHUTDOWN_DELAY"


@dataclass(frozen=True)
class Settings:
    """Where the data lives and how the service is configured."""

    redis_url: str | None
    config: Config
    shutdown_delay: float = 0.0  # seconds between SIGTERM (readiness 503) and uvicorn's shutdown
    credentials: Credentials | None = None  # None: authentication is off

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Settings from `GMSD_REDIS_URL`, `GMSD_CONFIG`, `GMSD_SHUTDOWN_DELAY` and the `GMSD_AUTH_*`
        variables (unset or empty: defaults)."""
        config = load_config(environ.get(CONFIG_PATH) or None)
        return cls(
            redis_url=environ.get(REDIS_URL) or None,
            config=config,
            shutdown_delay=float(environ.get(SHUTDOWN_DELAY) or 0),
            credentials=load_credentials(config, environ),
        )
