"""The table of rendered service texts (gmsd.cs.rendered): what it answers is what rendering
answers, it follows every change of a conversation, and it stays within its bounds."""

from __future__ import annotations

from starlette.testclient import TestClient

from gmsd.cs import rendered
from gmsd.cs.records import Conversation, Extensions, View, hash_of, render_service
from gmsd.cs.rendered import RenderedServices
from tests.support.cs_support import CS, get, post_ok, start_service, start_state

VIEW = View(active_states=True)


def conversation(t0: int, attached: bytes = b'"voice"', states: tuple[bytes, ...] = ()) -> Conversation:
    svc = [b"t0", str(t0).encode(), b"type", b'"billing"', b"a:channel", attached]
    return Conversation(hash_of(svc), hash_of(list(states)), {}, (svc, list(states), []))


def test_the_texts_are_what_rendering_gives_and_a_repeat_is_taken_from_the_table() -> None:
    table = RenderedServices()
    found = [("s1", conversation(1_700_000_000_000)),
             ("s2", conversation(1_700_000_001_000, states=(b"1:t0", b"1700000001000", b"1:type", b'"Waiting"')))]
    first = table.render(found, VIEW)
    assert [bytes(t) for t in first] == [bytes(render_service(sid, c.service, c.states, c.tasks, VIEW))
                                         for sid, c in found]
    again = table.render(found, VIEW)
    assert all(a is b for a, b in zip(first, again, strict=True))  # not rendered a second time
    assert len(table) == 2


def test_another_source_view_or_id_is_rendered_again() -> None:
    table = RenderedServices()
    (kept,) = table.render([("s1", conversation(1_700_000_000_000))], VIEW)
    (changed,) = table.render([("s1", conversation(1_700_000_000_000, b'"chat"'))], VIEW)
    assert b'"channel":"chat"' in bytes(changed) and b'"channel":"voice"' in bytes(kept)
    narrow = View(active_states=True, extensions=Extensions(service=frozenset()))
    (without,) = table.render([("s1", conversation(1_700_000_000_000))], narrow)
    assert b"channel" not in bytes(without)
    (other,) = table.render([("s2", conversation(1_700_000_000_000))], VIEW)
    assert b'"service_id":"s2"' in bytes(other)


def test_a_conversation_without_its_source_is_rendered_and_not_kept() -> None:
    table = RenderedServices()
    bare = Conversation({b"t0": b"1700000000000"}, {}, {})
    (text,) = table.render([("s1", bare)], VIEW)
    assert bytes(text).startswith(b'{"service_id":"s1"') and len(table) == 0


def test_the_table_is_bounded_in_entries_bytes_and_views() -> None:
    table = RenderedServices()
    for i in range(rendered.ENTRIES + 10):
        table.render([(f"s{i}", conversation(1_700_000_000_000))], VIEW)
    assert len(table) == rendered.ENTRIES
    big = b'"' + b"x" * rendered.ENTRY_BYTES + b'"'
    table.render([("big", conversation(1_700_000_000_000, big))], VIEW)
    assert len(table) == rendered.ENTRIES
    assert not any(key[1] == "big" for key in table._texts)
    for n in range(rendered.VIEWS + 1):
        table.render([("s1", conversation(1_700_000_000_000))],
                     View(active_states=True, extensions=Extensions(service=frozenset({f"k{n}"}))))
    assert len(table._views) <= rendered.VIEWS and len(table) <= rendered.VIEWS


def test_a_repeated_customer_query_shows_every_change(client: TestClient) -> None:
    customer = "C-rendered"
    sid = start_service(client, customer_id=customer, service_type="billing", channel="voice")

    def only() -> dict[str, object]:
        (service,) = get(client, f"/customers/{customer}/services", active_states="true")
        assert service["service_id"] == sid
        return dict(service)

    assert only()["channel"] == "voice" and only()["active_states"] == []
    response = client.put(f"{CS}/services/{sid}/extensions/channel", json="chat")
    assert response.status_code in (200, 204), response.text
    assert only()["channel"] == "chat"
    state_id = start_state(client, sid, state_type="Waiting")
    assert [s["state_id"] for s in only()["active_states"]] == [state_id]  # type: ignore[attr-defined]
    post_ok(client, f"/services/{sid}/end", {})
    assert "completed" in only()
