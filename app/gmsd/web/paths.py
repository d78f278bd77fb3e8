"""Every path prefix and operations path of gmsd, named once.

The per-worker concurrency limit: past `[limits] max_concurrent_requests` in progress, answer 503.

Every request in progress holds memory (its body, up to `[limits] body_bytes`) and waits on the
same Redis; under a burst it is better to refuse the excess at once, cheaply and with a
`Retry-After`, than to let latency and memory grow until the process is killed. The check is a
comparison and two integer updates per request (one event loop per worker: no lock needed),
made by `gmsd.web.observer.RequestObserver`, which already stands around every request: the
limit costs no ASGI layer of its own.

The operations routes are never refused (a probe must see the process, a scrape the overload);
they are counted like any request, which only makes the limit slightly stricter.
"""

from __future__ import annotations

GMS_PREFIX = "/genesys/1/service"  # the Service API
CS_PREFIX = "/genesys/1/cs"  # Context Services
STORAGE_PREFIX = "/genesys/1/storage"  # the Storage API
HEALTHZ = "/healthz"
READYZ = "/readyz"
METRICS = "/metrics"
OPENAPI_PATH = "/openapi.json"
API_PREFIXES = (GMS_PREFIX + "/", CS_PREFIX + "/", STORAGE_PREFIX + "/")
CONSOLE_PREFIX = "/console"  # the web console (gmsd.console); protected like the APIs
DOCS_PATH = "/docs"  # the interactive API reference; open, like /openapi.json

# Never refused by the concurrency limit, and logged only at debug: probes and scrapes.
EXEMPT_PATHS = frozenset({HEALTHZ, READYZ, METRICS})
