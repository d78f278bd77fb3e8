"""The files of an export to files (MAINTENANCE.md §5.3): services, states and tasks, JSON Lines or CSV.

Names: `export<yyyyMMdd>_<HHmmss>_<SSS>_{services,states,tasks}.{jsonl|csv}` (UTC), in the configured
`export_dir`; a second export in the same millisecond gets `-1` (then `-2`, …) after the
milliseconds. Each file is written under a temporary name in that directory and linked to its
final name once all three are complete (`os.link` never replaces a file: the services file's name
is what reserves the `-n`), so a reader never sees a partial file and no export overwrites another.

A services line is the service as `GET /services/{id}` answers it, with all attached data and no
nested arrays; a states or tasks line is the state or task as its GET answers it (with
`service_id`). CSV: a header row, one row per object, each known field a column (objects and
arrays as JSON text), the attached data as one JSON object column `attached_data`.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import msgspec

from gmsd.cs.models import Service, State, Task
from gmsd.cs.records import Conversation, View, render_service, render_state, render_task, split_items

KINDS = ("services", "states", "tasks")
FORMATS = ("json", "csv")
_NESTED = {"active_states", "completed_states", "active_tasks", "completed_tasks"}
COLUMNS = {
    kind: [name for name in struct.__struct_encode_fields__ if name not in _NESTED] + ["attached_data"]
    for kind, struct in (("services", Service), ("states", State), ("tasks", Task))
}
_BARE = View()  # no nested arrays
_decode = msgspec.json.Decoder(dict[str, Any]).decode


def file_stem(millis: int, suffix: int) -> str:
    """`export20261201_101500_123` (UTC), with `-<suffix>` when suffix > 0."""
    seconds, ms = divmod(millis, 1000)
    stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime(seconds))
    return f"export{stamp}_{ms:03d}" + (f"-{suffix}" if suffix else "")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


class _Writers:
    """The three open temporary files of one export, and the rows written to them."""

    def __init__(self, handles: dict[str, IO[bytes]], form: str) -> None:
        self.handles = handles
        self.form = form
        self.names: list[str] = []
        if form == "csv":
            for kind, handle in handles.items():
                self._csv_row(handle, COLUMNS[kind])

    @staticmethod
    def _csv_row(handle: IO[bytes], cells: list[str]) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\r\n").writerow(cells)
        handle.write(text.getvalue().encode("utf-8"))

    def _line(self, kind: str, rendered: bytes) -> None:
        handle = self.handles[kind]
        if self.form == "json":
            handle.write(rendered + b"\n")
            return
        resource = _decode(rendered)
        known = COLUMNS[kind][:-1]
        attached = {k: v for k, v in resource.items() if k not in known}
        self._csv_row(handle, [_cell(resource.get(name)) for name in known] + [_cell(attached)])

    def add(self, service_id: str, found: Conversation) -> None:
        """One service with its states and tasks."""
        self._line("services", bytes(render_service(service_id, found.service, {}, {}, _BARE)))
        for state_id, fields in split_items(found.states).items():
            self._line("states", bytes(render_state(service_id, state_id, fields, {}, _BARE)))
        for task_id, fields in split_items(found.tasks).items():
            self._line("tasks", bytes(render_task(service_id, task_id, fields, None)))


class ExportFiles:
    """Where and how one export to files writes: the directory, the format, the export's instant."""

    def __init__(self, directory: str | Path, form: str, millis: int) -> None:
        self.directory = Path(directory)
        self.form = form
        self.millis = millis

    @property
    def extension(self) -> str:
        return "jsonl" if self.form == "json" else "csv"

    @contextmanager
    def writing(self) -> Iterator[_Writers]:
        """Three temporary files to write; on success linked to their final names (`names`)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary: dict[str, Path] = {}
        handles: dict[str, IO[bytes]] = {}
        try:
            for kind in KINDS:
                fd, name = tempfile.mkstemp(prefix=".export-", suffix=f".{kind}.part", dir=self.directory)
                temporary[kind] = Path(name)
                handles[kind] = os.fdopen(fd, "wb", buffering=256 * 1024)
            writers = _Writers(handles, self.form)
            yield writers
            for handle in handles.values():
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
            writers.names = self._publish(temporary)
        finally:
            for handle in handles.values():
                handle.close()
            for path in temporary.values():
                path.unlink(missing_ok=True)

    def _publish(self, temporary: dict[str, Path]) -> list[str]:
        for suffix in range(10_000):
            stem = file_stem(self.millis, suffix)
            names = [f"{stem}_{kind}.{self.extension}" for kind in KINDS]
            try:
                os.link(temporary["services"], self.directory / names[0])  # reserves the stem
            except FileExistsError:
                continue
            except OSError:  # a file system without hard links: reserve the name, then replace it
                try:
                    os.close(os.open(self.directory / names[0], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                except FileExistsError:
                    continue
                os.replace(temporary["services"], self.directory / names[0])
            for kind, name in zip(KINDS[1:], names[1:], strict=True):
                os.replace(temporary[kind], self.directory / name)
            return names
        raise FileExistsError(f"no free file name for {file_stem(self.millis, 0)} in {self.directory}")
