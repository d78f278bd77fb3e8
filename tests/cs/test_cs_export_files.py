"""Export to files (MAINTENANCE.md §5.3): three files (services, states, tasks) in the configured
directory, JSON Lines or CSV, answered as bare file names."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from starlette.testclient import TestClient

from gmsd.cs.files import ExportFiles
from gmsd.cs.records import Conversation
from tests.conftest import AppFactory
from tests.support.cs_support import CS, assert_error, get, post_ok, start_service, start_state, start_task

NAME = re.compile(r"^export\d{8}_\d{6}_\d{3}(-\d+)?_(services|states|tasks)\.(jsonl|csv)$")
RANGE = {"time_from": "2026-01-10T00:00:00.000Z", "time_to": "2026-01-20T00:00:00.000Z"}


def exporter(make_client: AppFactory, directory: Path) -> TestClient:
    return make_client(f'[context_services]\nexport_dir = "{directory}"\n')


def make_services(client: TestClient, headers: dict[str, str] | None = None) -> dict[str, str]:
    """`active` started in the range with a state and a task; `done` ended in it; `outside`."""
    active = start_service(client, customer_id="C-files-a", timestamp="2026-01-12T08:00:00.000Z", tier="gold")
    state = start_state(client, active, state_type="s", mood={"ok": True})
    start_task(client, active, task_type="t", state_id=state)
    done = start_service(client, customer_id="C-files-b", timestamp="2026-01-05T08:00:00.000Z")
    post_ok(client, f"/services/{done}/end", {"timestamp": "2026-01-15T08:00:00.000Z"})
    outside = start_service(client, customer_id="C-files-c", timestamp="2026-02-01T08:00:00.000Z")
    return {"active": active, "done": done, "outside": outside}


def export(client: TestClient, **params: str) -> list[str]:
    response = client.post(f"{CS}/maintenance/services/files", params={**RANGE, **params})
    assert response.status_code == 200, response.text
    created: list[str] = response.json()["created"]
    assert len(created) == 3 and all(NAME.match(name) for name in created), created
    assert [name.rsplit("_", 1)[1].split(".")[0] for name in created] == ["services", "states", "tasks"]
    # what the Genesys QA helper reads: the part between the first `_` and the first `.`
    assert all(name[name.index("_") + 1:name.index(".")] for name in ", ".join(created).split(", "))
    return created


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_json_lines_files_hold_services_states_and_tasks(make_client: AppFactory, tmp_path: Path) -> None:
    client = exporter(make_client, tmp_path)
    made = make_services(client)
    services, states, tasks = (tmp_path / name for name in export(client))
    assert [s["service_id"] for s in lines(services)] == [made["active"], made["done"]]  # oldest event first
    assert lines(services)[0] == get(client, f"/services/{made['active']}")  # as GET answers it, no arrays
    assert lines(services)[0]["tier"] == "gold"
    [state] = lines(states)
    assert state["service_id"] == made["active"] and state["mood"] == {"ok": True} and "active_tasks" not in state
    [task] = lines(tasks)
    assert task["service_id"] == made["active"] and task["state_id"] == state["state_id"]
    # filter_state needs no export_content here
    services, _, _ = (tmp_path / name for name in export(client, filter_state="inactive"))
    assert [s["service_id"] for s in lines(services)] == [made["done"]]
    # nothing left behind but the files
    assert not [p for p in tmp_path.iterdir() if not NAME.match(p.name)]


def test_csv_files_have_a_header_and_one_row_per_object(make_client: AppFactory, tmp_path: Path) -> None:
    client = exporter(make_client, tmp_path)
    made = make_services(client)
    services, states, tasks = (tmp_path / name for name in export(client, format="csv"))
    rows = list(csv.DictReader(services.open(encoding="utf-8", newline="")))
    assert [r["service_id"] for r in rows] == [made["active"], made["done"]]
    assert json.loads(rows[0]["attached_data"]) == {"tier": "gold"}
    assert json.loads(rows[0]["started"])["timestamp"] == "2026-01-12T08:00:00.000Z"
    [state] = list(csv.DictReader(states.open(encoding="utf-8", newline="")))
    assert json.loads(state["attached_data"]) == {"mood": {"ok": True}} and state["service_id"] == made["active"]
    assert len(list(csv.DictReader(tasks.open(encoding="utf-8", newline="")))) == 1


def test_an_empty_result_is_three_files_without_data_rows(make_client: AppFactory, tmp_path: Path) -> None:
    client = exporter(make_client, tmp_path)
    names = export(client, time_from="2031-01-01T00:00:00Z", time_to="2031-02-01T00:00:00Z")
    assert all((tmp_path / name).read_bytes() == b"" for name in names)
    names = export(client, time_from="2031-01-01T00:00:00Z", time_to="2031-02-01T00:00:00Z", format="CSV")
    assert all(len((tmp_path / name).read_text().splitlines()) == 1 for name in names)  # the header


def test_a_tenant_exports_its_own_services_only(make_client: AppFactory, tmp_path: Path) -> None:
    client = exporter(make_client, tmp_path)
    make_services(client)
    tenant = {"ContactCenterId": "files-tenant"}
    response = client.post(f"{CS}/maintenance/services/files", params=RANGE, headers=tenant)
    services = tmp_path / response.json()["created"][0]
    assert lines(services) == []  # the services above are the default tenant's
    theirs = client.post(f"{CS}/services/start", headers=tenant,
                         json={"customer_id": "C-t", "timestamp": "2026-01-12T08:00:00.000Z"}).json()["service_id"]
    response = client.post(f"{CS}/maintenance/services/files", params=RANGE, headers=tenant)
    assert [s["service_id"] for s in lines(tmp_path / response.json()["created"][0])] == [theirs]


def test_bad_parameters_are_refused(make_client: AppFactory, tmp_path: Path) -> None:
    client = exporter(make_client, tmp_path)
    for params in ({}, {**RANGE, "format": "xml"}, {**RANGE, "filter_events": "x"}, {**RANGE, "filter_state": "x"}):
        assert_error(client.post(f"{CS}/maintenance/services/files", params=params), 400,
                     "InvalidParameterException")
    assert list(tmp_path.iterdir()) == []


def test_two_exports_in_the_same_millisecond_get_names_of_their_own(tmp_path: Path) -> None:
    conversation = Conversation({b"t0": b"0"}, {}, {})
    made = []
    for _ in range(3):
        files = ExportFiles(tmp_path / "new", "json", 1_796_000_000_123)
        with files.writing() as writers:
            writers.add("1-00000000-0000-4000-8000-000000000000", conversation)
        made.append(writers.names)
    assert [names[0] for names in made] == ["export20261130_005320_123_services.jsonl",
                                            "export20261130_005320_123-1_services.jsonl",
                                            "export20261130_005320_123-2_services.jsonl"]
    assert len({name for names in made for name in names}) == 9
