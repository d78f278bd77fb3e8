"""The Lua scripts of `lua/`, read once at start-up and run through EVALSHA.

redis-py's `Script` objects send EVALSHA and, on NOSCRIPT (after a Redis restart, a failover
or SCRIPT FLUSH), load the script again and retry, so callers never see that error.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar


def lua_directory() -> Path:
    """Where the `.lua` files are: inside the installed package, or `lua/` of a source tree."""
    packaged = resources.files("app") / "lua"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "lua"


def read_script(name: str) -> str:
    """The text of `lua/<name>.lua`."""
    return (lua_directory() / f"{name}.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class ScriptSet:
    """Base of a store's scripts: each dataclass field names a `lua/<field>.lua` file."""

    @classmethod
    def register(cls: type[_S], client: Any) -> _S:
        """Register every script with `client` (no round trip until first use)."""
        names = cls.__dataclass_fields__
        return cls(**{name: client.register_script(read_script(name)) for name in names})


_S = TypeVar("_S", bound=ScriptSet)
