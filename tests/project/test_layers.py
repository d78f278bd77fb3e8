"""The layout's rules, executable: who may import what.

A request reads straight down: an area's `routes.py` (HTTP) calls its domain modules (pure:
no Starlette, no Redis), which reach Redis only through their area's `store.py` behind a
`Protocol`; `store.py` alone talks to `gmsd.backend`, and alone builds the Context Services
partitions, keys and index members of `gmsd.keys` (the CS domain speaks in customers, contact
keys, types and service ids). `gmsd.web` and `gmsd.backend` are
plumbing that knows no area; areas do not reach into each other. `main.py` (the composition
root) and `cli.py` wire everything together; `gmsd.bench` is a tool the service never imports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import ROOT

PACKAGE = ROOT / "app" / "gmsd"
PLUMBING = {"web", "backend"}
TOOLS = {"bench"}
ROOMS_WITH_IO = {"routes", "store"}  # an area's only modules that may touch HTTP or Redis
COMPOSITION_ROOT = {"gmsd.main", "gmsd.cli"}
HTTP_LIBRARIES = ("starlette", "uvicorn", "python_multipart")
REDIS_LIBRARIES = ("redis", "fakeredis", "hiredis", "lupa")
KEYS_MODULE = "gmsd.keys"
# What a module of `gmsd.cs` other than its store may take from `gmsd.keys`: the partition count
# (maintenance and the sweeper walk partitions), the tenant's key prefix (routes) and the check that
# a service id is one gmsd could have issued. Every other `cs_…`/`CS_…` name there (partitions, ids'
# partitions, keys, index members and their prefixes and parts, present and future) is the store's.
CS_KEYS_OUTSIDE_STORE = frozenset({"CS_PARTITIONS", "cs_space", "is_cs_service_id"})


def areas(package: Path = PACKAGE) -> set[str]:
    """The API areas: sub-packages that are neither plumbing nor tools."""
    return {p.name for p in package.iterdir()
            if (p / "__init__.py").is_file() and p.name not in PLUMBING | TOOLS}


@dataclass(frozen=True)
class Edge:
    """One import: `importer` (a module name) imports `imported` (a module name) at `line`; `name`
    is the name taken from it (`from imported import name`), "" when the module itself is imported."""

    importer: str
    imported: str
    line: int
    name: str = ""


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(package: Path = PACKAGE) -> Iterator[Edge]:
    """Every import in the package, relative ones resolved, `from a import b` as `a.b` when b is a module."""
    for path in sorted(package.rglob("*.py")):
        importer = module_name(path, package)
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Edge(importer, alias.name, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = importer.split(".")
                    anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    as_module = package.parent / Path(*candidate.split("."))
                    is_module = as_module.with_suffix(".py").is_file() or (as_module / "__init__.py").is_file()
                    if is_module:
                        yield Edge(importer, candidate, node.lineno)
                    else:
                        yield Edge(importer, base, node.lineno, alias.name)


def _top(name: str) -> str:
    return name.split(".")[0]


def builds_cs_keys(edge: Edge) -> bool:
    """True if `edge` takes from `gmsd.keys` what only the CS store may (or the whole module)."""
    if edge.imported != KEYS_MODULE:
        return False
    if not edge.name:
        return True  # `import gmsd.keys` / `from gmsd import keys`: every builder, as an attribute
    return edge.name.lower().startswith("cs_") and edge.name not in CS_KEYS_OUTSIDE_STORE


def violations(package: Path = PACKAGE) -> list[str]:
    """Every import that breaks a rule of the layout, as `importer:line imports imported (rule)`."""
    known_areas = areas(package)
    found: list[str] = []
    for edge in imports(package):
        parts = edge.importer.split(".")
        target = edge.imported.split(".")
        where = f"{edge.importer}:{edge.line} imports {edge.imported}"
        sub = parts[1] if len(parts) > 1 else ""
        room = parts[2] if len(parts) > 2 else ""
        into_gmsd = target[0] == "gmsd"
        target_sub = target[1] if into_gmsd and len(target) > 1 else ""
        if edge.importer in COMPOSITION_ROOT:
            continue
        if sub in TOOLS:
            continue  # the benchmark drives the service from outside; nothing imports it
        if into_gmsd and target_sub in TOOLS:
            found.append(f"{where} (the service never imports the benchmark)")
        if sub in PLUMBING and into_gmsd and target_sub in known_areas:
            found.append(f"{where} (plumbing knows no area)")
        if sub in PLUMBING and into_gmsd and target_sub in PLUMBING and target_sub != sub:
            found.append(f"{where} (web and backend know nothing of each other)")
        if into_gmsd and target_sub == "backend" and sub != "backend" and not (sub in known_areas and room == "store"):
            found.append(f"{where} (only an area's store.py talks to the backend)")
        if sub in known_areas and into_gmsd and target_sub in known_areas and target_sub != sub:
            found.append(f"{where} (an area does not reach into another)")
        if sub in known_areas and room not in ROOMS_WITH_IO:
            if _top(edge.imported) in HTTP_LIBRARIES or (into_gmsd and target_sub == "web"):
                found.append(f"{where} (domain and model modules know no HTTP)")
            if _top(edge.imported) in REDIS_LIBRARIES:
                found.append(f"{where} (domain and model modules know no Redis)")
            if into_gmsd and target_sub == sub and len(target) > 2 and target[2] in ROOMS_WITH_IO:
                found.append(f"{where} (the domain reaches its store through a Protocol, never routes or store)")
        if sub == "cs" and room != "store" and builds_cs_keys(edge):
            found.append(f"{where}.{edge.name or '*'} (only the CS store builds partitions, keys and index members)")
        if sub in known_areas and room == "store" and (_top(edge.imported) in HTTP_LIBRARIES or target_sub == "web"):
            found.append(f"{where} (a store knows no HTTP)")
        if (sub == "backend" or (sub not in known_areas and sub not in PLUMBING and not room)) and (
            _top(edge.imported) in HTTP_LIBRARIES
        ) and sub != "web":
            found.append(f"{where} (only web/ and routes know HTTP)")
        if sub not in PLUMBING and sub not in known_areas and _top(edge.imported) in REDIS_LIBRARIES:
            found.append(f"{where} (only backend/ and stores know Redis)")
    return found


def test_every_area_has_the_same_rooms() -> None:
    for area in sorted(areas()):
        rooms = {p.stem for p in (PACKAGE / area).glob("*.py")}
        assert {"__init__", "routes", "models", "store"} <= rooms, area


def test_every_test_folder_mirrors_a_package_folder() -> None:
    test_folders = {p.name for p in (ROOT / "tests").iterdir() if (p / "__init__.py").is_file()}
    assert test_folders - {"support", "project"} <= areas() | PLUMBING | TOOLS


def test_the_layout_rules_hold() -> None:
    assert violations() == []


def test_what_the_cs_domain_may_take_from_keys_exists() -> None:
    # The allowed names must exist, and the rule must have something to forbid.
    import gmsd.keys

    defined = set(vars(gmsd.keys))
    assert defined >= CS_KEYS_OUTSIDE_STORE
    store_only = {name for name in defined - CS_KEYS_OUTSIDE_STORE if name.lower().startswith("cs_")}
    assert store_only >= {"cs_partition", "cs_service_partition", "cs_member", "cs_match_prefix", "cs_type_part"}


FORBIDDEN = [
    ("gms/service_api.py", "from starlette.requests import Request\n", "know no HTTP"),
    ("cs/services.py", "import redis.asyncio\n", "know no Redis"),
    ("cs/services.py", "from gmsd.cs import store\n", "through a Protocol"),
    ("web/responses.py", "from gmsd.gms import routes\n", "plumbing knows no area"),
    ("backend/batcher.py", "from gmsd.web.responses import json_response\n", "know nothing of each other"),
    ("gms/routes.py", "from gmsd.backend.connect import connect\n", "only an area's store.py"),
    ("cs/routes.py", "from gmsd.gms.service_api import ServiceApi\n", "does not reach into another"),
    ("keys.py", "from starlette.responses import Response\n", "only web/ and routes know HTTP"),
    ("web/ops.py", "from gmsd.bench import harness\n", "never imports the benchmark"),
    ("cs/services.py", "from gmsd.keys import cs_member\n", "only the CS store builds"),
    ("cs/composite.py", "from gmsd.keys import is_cs_service_id, cs_member_service\n", "only the CS store builds"),
    ("cs/items.py", "from gmsd.keys import cs_type_part\n", "only the CS store builds"),
    ("cs/queries.py", "from gmsd.keys import cs_customer_prefix as prefix\n", "only the CS store builds"),
    ("cs/maintenance.py", "from gmsd.keys import cs_index\n", "only the CS store builds"),
    ("cs/sweeper.py", "from gmsd import keys\n", "only the CS store builds"),
    ("cs/routes.py", "import gmsd.keys\n", "only the CS store builds"),
    ("cs/records.py", "from gmsd.keys import CS_TENANTS\n", "only the CS store builds"),
]


@pytest.mark.parametrize(("module", "line", "rule"), FORBIDDEN)
def test_a_forbidden_import_is_caught(tmp_path: Path, module: str, line: str, rule: str) -> None:
    # The checker runs on a copy of the package with one forbidden import added.
    import shutil

    copy = tmp_path / "gmsd"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "wrk"))
    target = copy / module
    target.write_text(target.read_text(encoding="utf-8") + "\n" + line, encoding="utf-8")
    found = violations(copy)
    assert any(rule in v and module.replace("/", ".").removesuffix(".py") in v for v in found), found
