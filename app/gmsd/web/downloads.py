"""Serving large values: a bounded lane for them, and an answer sent in chunks with back-pressure.

A 10 MB value answered in one `send` sits whole in the connection's write buffer (next to the
reply's own bytes) until the client reads it, and many at once crowd the Redis connection that
every small command shares. So a large value waits for a place in `DownloadLane` (a few per
worker, from the Redis read to the last byte sent: what the lane's downloads hold is bounded by
its size times the file limit), and `Download` sends it in chunks: each waits until the client
has taken the previous ones (uvicorn's drain), so the write buffer holds about one chunk. A
client that stops reading is cut off by the connection's minimum rate (`gmsd.web.protocol`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from urllib.parse import quote

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gmsd.errors import Overloaded

CHUNK_BYTES = 256 * 1024
# Whatever a stored value's type: a download, never a page a browser renders or runs on gmsd's
# origin (a `text/html` upload would be a stored script otherwise).
DOWNLOAD_HEADERS = {"x-content-type-options": "nosniff", "content-security-policy": "default-src 'none'; sandbox"}


def attachment(filename: str | None) -> str:
    """The Content-Disposition of a download: `attachment`, with the file name when there is one."""
    if not filename:
        return "attachment"
    quoted = quote(filename, safe=" !#$&+-.^_`|~")
    if quoted == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename*=UTF-8''{quote(filename, safe='')}"


class DownloadLane:
    """At most `places` large values being read or sent at once; a wait for a place is bounded."""

    def __init__(self, places: int, wait: float) -> None:
        self.places = places
        self.wait = wait
        self._free = asyncio.Semaphore(places)

    async def enter(self) -> Callable[[], None]:
        """Take a place (503 `Overloaded` if none frees up within `wait` s); the call leaves it."""
        try:
            async with asyncio.timeout(self.wait):
                await self._free.acquire()
        except TimeoutError:
            raise Overloaded("too many large values are being sent; retry later") from None
        left = False

        def leave() -> None:
            nonlocal left
            if not left:
                left = True
                self._free.release()

        return leave


class Download(Response):
    """`data` as a 200 answer in chunks of `CHUNK_BYTES`, each sent once the client took the last;
    `done` is called when the answer is over (sent, or the client gone)."""

    def __init__(self, data: bytes, headers: Mapping[str, str], done: Callable[[], None] | None = None) -> None:
        self.data = data
        self.done = done
        super().__init__(None, 200, {**headers, "content-length": str(len(data))})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the head, then the chunks (uvicorn's `send` waits while the client lags)."""
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            data = memoryview(self.data)  # chunks without copies
            for start in range(0, len(data), CHUNK_BYTES):
                await send({"type": "http.response.body", "body": data[start:start + CHUNK_BYTES], "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            self.data = b""
            if self.done is not None:
                self.done()
