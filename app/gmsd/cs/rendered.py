"""Service texts rendered before, found again by everything a text is made from.

A customer query renders every service of the customer each time (an agent desktop polls the
same journey over and over), and rendering is most of a query's CPU. `render_service` is a pure
function of the service id, the view and the three hashes, and a conversation read from Redis
carries the flat HGETALL answers its hashes were made from (`Conversation.source`): a text kept
under (view, service id, source) is exactly what rendering again would give. Nothing needs
invalidating, since any change to a conversation changes its source; the table only has to stay
small, which it does by entries, by bytes per entry and by distinct views.
"""

from __future__ import annotations

from msgspec import Raw

from gmsd.cs.records import Conversation, View, render_service

# Per worker: at most ENTRIES texts of at most ENTRY_BYTES (text and source together), so under
# 8 MiB of bytes; views are few in practice (the query flags and `extensions`), bounded anyway.
ENTRIES = 2048
ENTRY_BYTES = 4096
VIEWS = 64

_Key = tuple[int, str, tuple[bytes, ...], tuple[bytes, ...], tuple[bytes, ...]]


class RenderedServices:
    """A bounded table of rendered service texts; the oldest entry goes first when it is full."""

    __slots__ = ("_texts", "_views")

    def __init__(self) -> None:
        self._views: dict[View, int] = {}
        self._texts: dict[_Key, Raw] = {}

    def render(self, found: list[tuple[str, Conversation]], view: View) -> list[Raw]:
        """`render_service` of each (service id, conversation), in order, from the table where
        it holds the text."""
        slot = self._views.get(view)
        if slot is None:
            if len(self._views) >= VIEWS:  # a client cycling through extensions: start over
                self._views.clear()
                self._texts.clear()
            slot = self._views[view] = len(self._views)
        texts = self._texts
        out: list[Raw] = []
        for service_id, conversation in found:
            source = conversation.source
            if source is None:
                out.append(render_service(service_id, conversation.service, conversation.states,
                                          conversation.tasks, view))
                continue
            # Tuples made here, not when read: only a query keys by the answers.
            svc, states, tasks = source
            key = (slot, service_id, tuple(svc), tuple(states), tuple(tasks))
            text = texts.get(key)
            if text is None:
                text = render_service(service_id, conversation.service, conversation.states,
                                      conversation.tasks, view)
                if _size(text, source) <= ENTRY_BYTES:
                    if len(texts) >= ENTRIES:
                        del texts[next(iter(texts))]
                    texts[key] = text
            out.append(text)
        return out

    def __len__(self) -> int:
        return len(self._texts)


def _size(text: Raw, source: tuple[list[bytes], list[bytes], list[bytes]]) -> int:
    # Joined, not summed item by item: one C call per answer costs less than a Python loop.
    service, states, tasks = source
    return len(text) + len(b"".join(service)) + len(b"".join(states)) + len(b"".join(tasks))
