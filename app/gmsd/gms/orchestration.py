"""Calls to the orchestration URL of `ors` services, over HTTP with a bounded timeout."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from gmsd.errors import OrchestrationFailed, OrchestrationTimeout

_decode_object = msgspec.json.Decoder(dict[str, Any])


class HttpOrchestrator:
    """POSTs JSON to orchestration URLs; one connection pool for the process."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def call(self, url: str, payload: dict[str, str]) -> dict[str, Any]:
        """POST `payload`; the JSON object answered. 504 on timeout, 502 on any other failure."""
        try:
            response = await self._client.post(
                url, content=msgspec.json.encode(payload), headers={"content-type": "application/json"}
            )
        except httpx.TimeoutException:
            raise OrchestrationTimeout(f"the orchestration did not answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise OrchestrationFailed(f"the orchestration could not be reached: {type(exc).__name__}") from None
        if not response.is_success:
            raise OrchestrationFailed(f"the orchestration answered HTTP {response.status_code}")
        if not response.content.strip():
            return {}
        try:
            return _decode_object.decode(response.content)
        except msgspec.DecodeError:
            raise OrchestrationFailed("the orchestration did not answer a JSON object") from None

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
