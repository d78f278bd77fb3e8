"""Cross-origin requests from browsers (API.md §0, "Browsers (CORS)"): Starlette's own middleware,
configured from the `[cors]` section.

Browser clients of GMS call it from another origin and send `gms_user`, `ContactCenterId` or
`Authorization`, so the browser first sends an `OPTIONS` preflight. Starlette's `CORSMiddleware`
answers every preflight itself, before routing (so every route has one, and no credentials are
asked for: browsers never send them on a preflight), and adds `Access-Control-Allow-Origin` to
every answer that passes through it. `gmsd.main` puts it right inside `RequestObserver`, which
sends the answers it makes itself (503 when overloaded, 500 on an unhandled error) through the
same layer (`answers_through`), so those carry the header too.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from gmsd.config import CorsOptions

Layer = Callable[[ASGIApp], ASGIApp]
# Answer headers a page may read besides the safelisted ones: where a started service is
# (`Location`), when to retry a 503, the request id to quote, a downloaded file's name.
EXPOSED_HEADERS = ("Location", "Retry-After", "X-Request-ID", "Content-Disposition")


def origin_pattern(origins: tuple[str, ...]) -> str | None:
    """One regular expression for the `https://*.example.com` entries (None: there are none).

    `*` stands for one or more DNS labels: `https://a.b.example.com` fits, `https://example.com`
    does not (list it too), and neither does `https://evil-example.com`.
    """
    wildcards = [origin for origin in origins if origin.startswith(("http://*.", "https://*."))]
    if not wildcards:
        return None
    parts = []
    for origin in wildcards:
        scheme, _, rest = origin.partition("://*.")
        parts.append(re.escape(scheme) + r"://(?:[A-Za-z0-9-]+\.)+" + re.escape(rest))
    return "(?:" + "|".join(parts) + ")"


def cors_layer(options: CorsOptions) -> Layer | None:
    """What wraps the application for `options`, or None when CORS is off (no layer at all)."""
    if not options.enabled:
        return None
    exact = [origin for origin in options.allowed_origins if "://*." not in origin]
    regex = origin_pattern(options.allowed_origins)

    def wrap(app: ASGIApp) -> ASGIApp:
        return CORSMiddleware(app, allow_origins=exact, allow_origin_regex=regex,
                              allow_methods=[m.upper() for m in options.allowed_methods],
                              allow_headers=options.allowed_headers,
                              allow_credentials=options.allow_credentials, max_age=options.max_age,
                              expose_headers=EXPOSED_HEADERS)

    return wrap
