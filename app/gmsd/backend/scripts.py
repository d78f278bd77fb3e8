"""The Lua scripts of `lua/<area>/`, read once at start-up and run through EVALSHA.

redis-py's `Script` objects send EVALSHA and, on NOSCRIPT (after a Redis restart, a failover
or SCRIPT FLUSH), load the script again and retry, so callers never see that error.

An area's `lua/<area>/lib.lua`, when there is one, is a prelude of shared functions: it is
prepended to every script of that area, so each registered script is one self-contained text.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, TypeVar

PRELUDE = "lib"


def lua_directory() -> Path:
    """Where the `lua/<area>/*.lua` files are: inside the installed package, or `lua/` of a source tree."""
    packaged = resources.files("gmsd") / "lua"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[3] / "lua"


def read_script(area: str, name: str) -> str:
    """The text of `lua/<area>/<name>.lua`."""
    return (lua_directory() / area / f"{name}.lua").read_text(encoding="utf-8")


def script_text(area: str, name: str) -> str:
    """What is registered for `lua/<area>/<name>.lua`: the area's prelude (if any), then the script."""
    prelude = lua_directory() / area / f"{PRELUDE}.lua"
    script = read_script(area, name)
    return prelude.read_text(encoding="utf-8") + "\n" + script if prelude.is_file() else script


@dataclass(frozen=True)
class ScriptSet:
    """Base of a store's scripts: each dataclass field names a `lua/<area>/<field>.lua` file."""

    area: ClassVar[str]

    @classmethod
    def register(cls: type[_S], client: Any) -> _S:
        """Register every script with `client` (no round trip until first use)."""
        return cls(**{f.name: client.register_script(script_text(cls.area, f.name)) for f in fields(cls)})


def script_names(cls: type[ScriptSet]) -> list[str]:
    """The `<area>/<name>` of every script a set registers."""
    return [f"{cls.area}/{f.name}" for f in fields(cls)]


_S = TypeVar("_S", bound=ScriptSet)
