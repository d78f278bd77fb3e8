"""The `gmsd` command: `gmsd serve` runs the HTTP service."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from app import __version__
from app.config import load_config
from app.exceptions import ConfigError
from app.redis_url import parse_redis_url
from app.settings import CONFIG_PATH, REDIS_URL

log = logging.getLogger("gmsd")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gmsd",
        description="gmsd: the Genesys Mobile Services Service API and Context Services API, on Redis.",
    )
    parser.add_argument("--version", action="version", version=f"gmsd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the HTTP service",
        description="Run the HTTP service. With no Redis URL the embedded in-process store is used: "
        "one process only, data lost on exit.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for all)")
    serve.add_argument("--port", type=int, default=8080, help="TCP port to listen on")
    serve.add_argument(
        "--workers", type=int, default=1,
        help="worker processes; more than 1 needs a Redis URL (the embedded store is per process)",
    )
    serve.add_argument(
        "--redis-url", default=os.environ.get(REDIS_URL) or None,
        help=f"redis://host:port/db, rediss://…, unix:///path, redis+cluster://host:port[,host:port…] "
        f"or redis+sentinel://host:port[,host:port…]/<master>[/db] (env {REDIS_URL}); unset: the embedded store",
    )
    serve.add_argument(
        "--config", default=os.environ.get(CONFIG_PATH) or None,
        help=f"TOML configuration file (env {CONFIG_PATH}); unset: the built-in sample configuration",
    )
    serve.add_argument(
        "--log-level", default=os.environ.get("GMSD_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"], help="log level (env GMSD_LOG_LEVEL)",
    )
    return parser


def serve(args: argparse.Namespace) -> int:
    """Check the configuration, then hand over to uvicorn (uvloop + httptools)."""
    import uvicorn

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        load_config(args.config)
    except ConfigError as exc:
        print(f"gmsd: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if args.redis_url is not None:
        try:
            parse_redis_url(args.redis_url)
        except ConfigError as exc:
            print(f"gmsd: invalid {exc}", file=sys.stderr)
            return 2
    if args.workers < 1:
        print("gmsd: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.redis_url is None and args.workers > 1:
        print(
            "gmsd: --workers > 1 needs a Redis URL (--redis-url or GMSD_REDIS_URL): "
            "the embedded store lives inside one process",
            file=sys.stderr,
        )
        return 2
    # Worker processes read their settings from the environment, like a container would.
    os.environ[REDIS_URL] = args.redis_url or ""
    os.environ[CONFIG_PATH] = args.config or ""
    uvicorn.run(
        "app.main:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        log_level=args.log_level,
        access_log=False,
        server_header=False,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `gmsd` console command."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
