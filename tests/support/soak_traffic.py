"""Mixed traffic for the soak test: many concurrent clients, each with its own keep-alive
connection (as each mobile app has; one shared httpx pool of 64 connections is slower than gmsd),
its own GMS services and Context Services conversations, checking every answer against what it
was told before.

Each client keeps a ledger of what gmsd acknowledged (2xx): the strings and files of its GMS
services, the services it deleted, its CS conversations with their states, tasks and ends. Reads
during the run must match the ledger exactly (a client is the only writer of its own data), and
at the end every acknowledged write is read back once more. Any other answer than the expected
one is recorded as a mismatch; any 5xx separately.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

GMS = "/genesys/1/service"
CS = "/genesys/1/cs"
LIVE_SERVICES = 8  # per client: past this, the client deletes its oldest GMS service
ALL_FLAGS = {"active_states": "true", "completed_states": "true", "active_tasks": "true", "completed_tasks": "true"}


@dataclass
class Conversation:
    """A CS service as acknowledged: its customer, state and task ids, whether it was ended."""

    customer: str
    states: set[int]
    tasks: set[int]
    ended: bool = False


@dataclass
class Client:
    """One simulated client and its ledger."""

    number: int
    random: random.Random
    strings: dict[str, dict[str, str]] = field(default_factory=dict)  # live GMS service -> strings
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    conversations: dict[str, Conversation] = field(default_factory=dict)
    writes: int = 0  # a counter that makes every written value unique
    http: httpx.AsyncClient | None = None  # its own connection, as a mobile app has


@dataclass
class Report:
    """What the run did and found."""

    requests: int = 0
    operations: Counter[str] = field(default_factory=Counter)  # by name: gms_create, cs_query, ...
    statuses: Counter[int] = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)  # answers other than the ledger predicts
    acknowledged_writes: int = 0
    checked_at_end: int = 0
    lost: list[str] = field(default_factory=list)  # acknowledged writes not read back at the end
    rss_kib: list[tuple[float, int]] = field(default_factory=list)  # (seconds into the run, RSS)

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)


class Soak:
    """Runs `concurrency` clients against `base` for `seconds`, then checks every ledger."""

    def __init__(self, base: str, concurrency: int, seconds: float, seed: int = 6) -> None:
        self.base = base
        self.concurrency = concurrency
        self.seconds = seconds
        self.seed = seed
        self.report = Report()

    async def run(self, rss: Any = None) -> Report:
        """The whole soak; `rss()` (KiB), if given, is sampled every second."""
        clients = [Client(n, random.Random(self.seed * 1000 + n)) for n in range(self.concurrency)]
        async with contextlib.AsyncExitStack() as connections:
            for client in clients:
                client.http = await connections.enter_async_context(httpx.AsyncClient(
                    base_url=self.base, limits=httpx.Limits(max_connections=1), timeout=30))
            await self._traffic(clients, rss)
        return self.report

    async def _traffic(self, clients: list[Client], rss: Any) -> None:
        began = time.monotonic()
        end = began + self.seconds
        sampler = asyncio.create_task(self._sample(rss, began)) if rss is not None else None
        await asyncio.gather(*(self._client(client, end) for client in clients))
        if sampler is not None:
            sampler.cancel()
            self.report.rss_kib.append((time.monotonic() - began, rss()))
        await asyncio.gather(*(self._check_at_end(client) for client in clients))

    async def _sample(self, rss: Any, began: float) -> None:
        while True:
            self.report.rss_kib.append((time.monotonic() - began, rss()))
            await asyncio.sleep(1.0)

    # --- requests ----------------------------------------------------------------------------

    async def call(self, client: Client, method: str, path: str, expected: int, **kwargs: Any) -> httpx.Response:
        """One request on the client's connection; its status counted, a status other than `expected` recorded."""
        assert client.http is not None
        response = await client.http.request(method, path, **kwargs)
        self.report.requests += 1
        self.report.statuses[response.status_code] += 1
        if response.status_code != expected:
            self.mismatch(f"{method} {path}: {response.status_code} {response.text[:200]}")
        return response

    def mismatch(self, what: str) -> None:
        if len(self.report.mismatches) < 50:
            self.report.mismatches.append(what)
        else:
            self.report.mismatches[-1] = f"... and more (last: {what})"

    def value(self, client: Client) -> str:
        client.writes += 1
        return f"c{client.number}-w{client.writes}-" + "v" * client.random.randrange(0, 200)

    async def _client(self, client: Client, end: float) -> None:
        operations = [
            (self.gms_create, 2), (self.gms_write, 4), (self.gms_read_all, 4), (self.gms_read_one, 3),
            (self.gms_read_binary, 2), (self.gms_delete_key, 1), (self.gms_delete_service, 1),
            (self.cs_composite_start, 2), (self.cs_query, 2), (self.cs_end, 1),
        ]
        functions = [f for f, _ in operations]
        weights = [w for _, w in operations]
        while time.monotonic() < end:
            operation = client.random.choices(functions, weights)[0]
            self.report.operations[operation.__name__] += 1
            await operation(client)

    async def gms_create(self, client: Client) -> None:
        strings = {f"k{i}": self.value(client) for i in range(client.random.randrange(1, 5))}
        content = client.random.randbytes(client.random.randrange(1, 4096))
        response = await self.call(client, "POST", f"{GMS}/storage", 200, data=strings,
                                   files={"photo": ("p.bin", content, "application/x-soak")})
        if response.status_code == 200:
            sid = response.json()["id"]
            client.strings[sid], client.files[sid] = strings, {"photo": content}
            self.report.acknowledged_writes += 1
            if len(client.strings) > LIVE_SERVICES:
                await self.gms_delete_service(client, next(iter(client.strings)))

    def pick(self, client: Client) -> str | None:
        return client.random.choice(list(client.strings)) if client.strings else None

    async def gms_write(self, client: Client) -> None:
        sid = self.pick(client)
        if sid is None:
            return await self.gms_create(client)
        strings = {f"k{client.random.randrange(8)}": self.value(client) for _ in range(client.random.randrange(1, 4))}
        if client.random.random() < 0.5:
            response = await self.call(client, "POST", f"{GMS}/{sid}/storage", 200, json=strings)
        else:
            response = await self.call(client, "POST", f"{GMS}/{sid}/storage", 200, data=strings)
        if response.status_code == 200:
            client.strings[sid].update(strings)
            for key in strings:
                client.files[sid].pop(key, None)  # a string replaces a file of the same key
            self.report.acknowledged_writes += 1

    async def gms_read_all(self, client: Client) -> None:
        sid = self.pick(client)
        if sid is not None:
            response = await self.call(client, "GET", f"{GMS}/{sid}/storage", 200)
            if response.status_code == 200 and response.json() != client.strings[sid]:
                self.mismatch(f"storage of {sid}: {response.text[:200]} != {client.strings[sid]}")

    async def gms_read_one(self, client: Client) -> None:
        sid = self.pick(client)
        if sid is not None and client.strings[sid]:
            key = client.random.choice(list(client.strings[sid]))
            response = await self.call(client, "GET", f"{GMS}/{sid}/storage/{key}", 200)
            if response.status_code == 200 and response.json() != {key: client.strings[sid][key]}:
                self.mismatch(f"{sid}/{key}: {response.text[:200]}")

    async def gms_read_binary(self, client: Client) -> None:
        sid = self.pick(client)
        if sid is not None and client.files[sid]:
            response = await self.call(client, "GET", f"{GMS}/{sid}/storage/binary/photo", 200)
            if response.status_code == 200 and response.content != client.files[sid]["photo"]:
                self.mismatch(f"{sid}/photo: {len(response.content)} bytes differ")

    async def gms_delete_key(self, client: Client) -> None:
        sid = self.pick(client)
        if sid is not None and client.strings[sid]:
            key = client.random.choice(list(client.strings[sid]))
            if (await self.call(client, "DELETE", f"{GMS}/{sid}/storage/{key}", 200)).status_code == 200:
                del client.strings[sid][key]
                self.report.acknowledged_writes += 1

    async def gms_delete_service(self, client: Client, sid: str | None = None) -> None:
        sid = sid or self.pick(client)
        if sid is not None and (await self.call(client, "DELETE", f"{GMS}/{sid}", 200)).status_code == 200:
            del client.strings[sid], client.files[sid]
            client.deleted.append(sid)
            self.report.acknowledged_writes += 1

    async def cs_composite_start(self, client: Client) -> None:
        customer = f"soak-{client.number}-{client.random.randrange(4)}"
        kind = f"type{client.random.randrange(3)}"
        element = {"service": {"customer_id": customer, "service_type": kind},
                   "state": {"state_type": "s"}, "task": {"task_type": "t"}}
        response = await self.call(client, "POST", f"{CS}/services_composite/start", 200, json={"services": [element]})
        if response.status_code != 200:
            return
        answer = response.json()["services"][0]
        sid = answer["service"]["service_id"]
        known = client.conversations.get(sid)
        if answer["service"]["created"] == "false" and (known is None or known.ended):
            self.mismatch(f"composite start found {sid}, which this client does not have active")
        conversation = known or Conversation(customer, set(), set())
        conversation.states.add(answer["state"]["state_id"])
        conversation.tasks.add(answer["task"]["task_id"])
        client.conversations[sid] = conversation
        self.report.acknowledged_writes += 1

    async def cs_query(self, client: Client) -> None:
        customer = f"soak-{client.number}-{client.random.randrange(4)}"
        response = await self.call(client, "GET", f"{CS}/customers/{customer}/services", 200)
        if response.status_code == 200:
            found = {s["service_id"] for s in response.json()}
            expected = {sid for sid, c in client.conversations.items() if c.customer == customer}
            if found != expected:
                self.mismatch(f"services of {customer}: {sorted(found)} != {sorted(expected)}")

    async def cs_end(self, client: Client) -> None:
        active = [sid for sid, c in client.conversations.items() if not c.ended]
        if active:
            sid = client.random.choice(active)
            if (await self.call(client, "POST", f"{CS}/services/{sid}/end", 204, json={})).status_code == 204:
                client.conversations[sid].ended = True
                self.report.acknowledged_writes += 1

    # --- the end: every acknowledged write, read back -----------------------------------------

    async def _check_at_end(self, client: Client) -> None:
        http = client.http
        assert http is not None
        for sid, strings in client.strings.items():
            response = await http.get(f"{GMS}/{sid}/storage")
            self.report.checked_at_end += 1
            if response.status_code != 200 or response.json() != strings:
                self.report.lost.append(f"GMS {sid}: {response.status_code} {response.text[:200]}")
            for key, content in client.files[sid].items():
                served = await http.get(f"{GMS}/{sid}/storage/binary/{key}")
                self.report.checked_at_end += 1
                if served.status_code != 200 or served.content != content:
                    self.report.lost.append(f"GMS {sid} file {key}: {served.status_code}")
        for sid in client.deleted:
            response = await http.get(f"{GMS}/{sid}/storage")
            self.report.checked_at_end += 1
            if response.status_code != 404:
                self.report.lost.append(f"GMS {sid} was deleted, yet answers {response.status_code}")
        for sid, conversation in client.conversations.items():
            response = await http.get(f"{CS}/services/{sid}", params=ALL_FLAGS)
            self.report.checked_at_end += 1
            if response.status_code != 200:
                self.report.lost.append(f"CS {sid}: {response.status_code} {response.text[:200]}")
                continue
            service = response.json()
            states = {s["state_id"] for s in service["active_states"] + service["completed_states"]}
            tasks = {t["task_id"] for t in service["active_tasks"] + service["completed_tasks"]}
            if states != conversation.states or tasks != conversation.tasks:
                self.report.lost.append(f"CS {sid}: states {states}, tasks {tasks} != {conversation}")
            if conversation.ended != ("completed" in service):
                self.report.lost.append(f"CS {sid}: ended {conversation.ended}, read back {service.get('completed')}")
