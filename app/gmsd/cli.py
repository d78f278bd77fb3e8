"""The `gmsd` command: `gmsd serve` runs the HTTP service."""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import logging.config
import os
import sys
from typing import cast

from gmsd import __version__, metrics
from gmsd.backend.urls import parse_redis_url
from gmsd.config import load_config
from gmsd.errors import ConfigError
from gmsd.settings import CONFIG_PATH, REDIS_URL, SHUTDOWN_DELAY
from gmsd.web import auth
from gmsd.web.logs import logging_config

WORKERS = "GMSD_WORKERS"
SHUTDOWN_TIMEOUT = "GMSD_SHUTDOWN_TIMEOUT"
LOG_LEVEL = "GMSD_LOG_LEVEL"

log = logging.getLogger("gmsd")


LOG_LEVELS = ("debug", "info", "warning", "error")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, not {port}")
    return port


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown for options that take a value; not for on/off flags, where `--no-webdis
    (default: True)` read as if webdis were skipped by default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.nargs == 0:
            return action.help
        return super()._get_help_string(action)


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
        formatter_class=_Help,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for all)")
    serve.add_argument("--port", type=_port, default=8080, help="TCP port to listen on (1 to 65535)")
    serve.add_argument(
        "--workers", type=int, default=os.environ.get(WORKERS) or "1",
        help=f"worker processes (env {WORKERS}); more than 1 needs a Redis URL (the embedded store is per process)",
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
        "--auth-file", default=os.environ.get(auth.FILE) or None,
        help=f"credentials file for HTTP Basic authentication (env {auth.FILE}; the global pair may come from "
        f"{auth.USERNAME} and {auth.PASSWORD} instead); unset and no pair: authentication is off",
    )
    serve.add_argument(
        "--proxy-headers", action="store_true",
        help="trust X-Forwarded-For/-Proto from any proxy (off: one less layer on every request)",
    )
    serve.add_argument(
        "--log-level", default=os.environ.get(LOG_LEVEL) or "info",
        choices=LOG_LEVELS,
        help=f"log level (env {LOG_LEVEL}); logs are JSON lines on stdout, one per request at info",
    )
    serve.add_argument(
        "--shutdown-timeout", type=float, default=os.environ.get(SHUTDOWN_TIMEOUT) or "15",
        help=f"on SIGTERM, seconds in-flight requests get to finish before they are cancelled (env {SHUTDOWN_TIMEOUT})",
    )
    serve.add_argument(
        "--shutdown-delay", type=float, default=os.environ.get(SHUTDOWN_DELAY) or "0",
        help=f"on SIGTERM, seconds to keep serving with readiness failing before the shutdown starts, "
        f"so load balancers stop sending traffic first (env {SHUTDOWN_DELAY})",
    )
    bench = commands.add_parser(
        "bench",
        help="benchmark gmsd against webdis on loopback (needs wrk, webdis, redis-server)",
        description="Start a redis-server, gmsd serve and webdis on loopback, drive each scenario with wrk, "
        "report requests/s, latency percentiles, errors and CPU per request (gmsd's, Redis's, wrk's and "
        "the whole machine's, with how busy the machine was), and stop everything.",
        formatter_class=_Help,
    )
    from gmsd.bench import harness as bench_module

    bench_module.add_arguments(bench)
    return parser


def serve(args: argparse.Namespace) -> int:
    """Check the configuration, then hand over to uvicorn (uvloop + httptools)."""
    import uvicorn

    from gmsd.web.protocol import GuardedHttpProtocol

    if args.log_level not in LOG_LEVELS:  # argparse checks choices, but not a default from the environment
        print(f"gmsd: {LOG_LEVEL}={args.log_level!r} is not a log level ({', '.join(LOG_LEVELS)})", file=sys.stderr)
        return 2
    log_config = logging_config(args.log_level)
    logging.config.dictConfig(log_config)
    try:
        config = load_config(args.config)
        credentials = auth.load_credentials(config, {**os.environ, auth.FILE: args.auth_file or ""})
    except ConfigError as exc:  # messages name files and keys, never a credential
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
    if not (args.shutdown_timeout >= 0 and args.shutdown_delay >= 0):  # NaN fails this too
        print("gmsd: --shutdown-timeout and --shutdown-delay must not be negative", file=sys.stderr)
        return 2
    # Worker processes read their settings from the environment, like a container would.
    os.environ[REDIS_URL] = args.redis_url or ""
    os.environ[CONFIG_PATH] = args.config or ""
    os.environ[SHUTDOWN_DELAY] = str(args.shutdown_delay)
    os.environ[auth.FILE] = args.auth_file or ""
    if credentials is None:
        log.info("authentication: off (no credentials given)")
    else:
        log.info("authentication: HTTP Basic (%d service(s) with credentials of their own)", len(credentials.services))
    # Before any worker imports prometheus_client: several workers share metrics through files.
    metrics_dir = metrics.prepare_multiprocess_dir(args.workers)
    if metrics.MULTIPROC_ENV in os.environ:
        log.info("metrics: multiprocess mode in %s", os.environ[metrics.MULTIPROC_ENV])
    try:
        uvicorn.run(
            "gmsd.main:app_from_environment",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            # httptools, with deadlines and a head size limit (uvicorn has neither); the partial
            # is pickled to each worker process with the limits it needs.
            http=cast("type[asyncio.Protocol]", functools.partial(GuardedHttpProtocol, limits=config.limits)),
            ws="none",  # gmsd serves no WebSocket: an Upgrade header is just a header
            timeout_keep_alive=config.limits.keep_alive_timeout,
            log_config=log_config,
            log_level=args.log_level,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=args.shutdown_timeout,
            proxy_headers=args.proxy_headers,
            forwarded_allow_ips="*" if args.proxy_headers else None,
        )
    finally:
        metrics.remove_multiprocess_dir(metrics_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `gmsd` console command."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "bench":
        from gmsd.bench import harness as bench

        return bench.main(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
