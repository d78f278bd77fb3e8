"""Every Lua script call keeps its keys in one Redis Cluster slot: checked on every call.

`SlotRecorder.install` wraps redis-py's `AsyncScript.__call__` (the one way gmsd runs Lua:
`ScriptSet` registers every script with `register_script`) for the whole test session, on
every backend. Each call's keys are hashed with redis-py's own `key_slot`; a call whose keys
span several slots, or that names no key at all (a cluster would run it on a random node), is
recorded as a violation and fails the test that made it. The recorder also counts calls per
script, so the session can tell when a script in `lua/` was never exercised by any test.

Nothing is mocked: the wrapped call goes on to the real client (fakeredis, Redis, or Redis
Cluster, where redis-py would refuse a cross-slot EVALSHA as well).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.commands.core import AsyncScript
from redis.crc import key_slot

from gmsd.backend.batcher import CommandBatcher
from gmsd.backend.scripts import PRELUDE, lua_directory, script_text


def script_names() -> dict[str, str]:
    """Registered text of every script in `lua/<area>/` -> its name, `<area>/<name>`.

    An area's `lib.lua` is a prelude, not a script: the area's scripts are registered with it
    prepended (as `ScriptSet.register` does).
    """
    return {script_text(path.parent.name, path.stem): f"{path.parent.name}/{path.stem}"
            for path in sorted(lua_directory().glob("*/*.lua")) if path.stem != PRELUDE}


def _as_bytes(key: Any) -> bytes:
    if isinstance(key, bytes):
        return key
    return str(key).encode("utf-8")


@dataclass
class SlotRecorder:
    """Calls and slot violations of Lua scripts, by script name."""

    names: dict[str, str] = field(default_factory=script_names)
    calls: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    def record(self, script: AsyncScript, keys: Sequence[Any]) -> None:
        """Count one call of `script` and note a violation if `keys` are not in one slot."""
        text = script.script if isinstance(script.script, str) else script.script.decode()
        name = self.names.get(text, f"<unregistered script {script.sha[:8]}>")
        self.calls[name] += 1
        if not keys:
            self.violations.append(f"{name}: called without keys (a cluster runs it on a random node)")
            return
        slots = {key_slot(_as_bytes(key)) for key in keys}
        if len(slots) > 1:
            self.violations.append(f"{name}: keys in {len(slots)} slots {sorted(slots)}: {list(keys)!r}")

    def take_violations(self) -> list[str]:
        """The violations recorded since the last call (and forget them)."""
        found, self.violations = self.violations, []
        return found

    def never_called(self) -> list[str]:
        """Names of the `lua/` scripts that no call has used."""
        return sorted(set(self.names.values()) - set(self.calls))

    @contextmanager
    def install(self) -> Iterator[SlotRecorder]:
        """Wrap every way a script runs (`AsyncScript.__call__`, the queues' `run_script`), until exit."""
        original = AsyncScript.__call__
        recorder = self

        async def recording_call(
            script: AsyncScript, keys: Sequence[Any] | None = None, args: Any = None, client: Any = None
        ) -> Any:
            recorder.record(script, list(keys or []))
            return await original(script, keys, args, client)

        def recording_run_script(original_run: Any) -> Any:
            async def run_script(queue: Any, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any] = ()) -> Any:
                recorder.record(script, list(keys))
                return await original_run(queue, script, keys, args)
            return run_script

        def recording_run_scripts(original_many: Any) -> Any:
            async def run_scripts(queue: Any, script: AsyncScript, calls: Sequence[Any]) -> Any:
                for keys, _ in calls:
                    recorder.record(script, list(keys))
                return await original_many(queue, script, calls)
            return run_scripts

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(AsyncScript, "__call__", recording_call)
            # The stores run their scripts through a command queue (EVALSHA inside a batch).
            patch.setattr(CommandBatcher, "run_script", recording_run_script(CommandBatcher.run_script))
            patch.setattr(CommandBatcher, "run_scripts", recording_run_scripts(CommandBatcher.run_scripts))
            yield self
