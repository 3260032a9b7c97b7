"""The agent's journal: which central jobs it holds and how far each got, on disk.

One small JSON file in the state directory, replaced atomically (written to a temporary
file, flushed to disk, renamed over the old one, the directory flushed), so a `kill -9` or
a power cut leaves either the old journal or the new one, never half of one.

A job's stages, each written *before* the step it names is taken:

    claimed   the central server gave the job to this agent (PDF not yet in CUPS)
    handing   about to hand the PDF to CUPS (the CUPS job name carries the central id)
    in_cups   CUPS has it as ``cups_job_id``
    done      CUPS finished it and the central server could not be told at once;
              ``result`` is what to report (kept until the server takes it, however
              long it is away; until then CUPS' job history answers for the job)

After a restart (``runner.reconcile``): ``claimed`` is given back unprinted; ``handing`` is
looked up in CUPS by name, and is ``in_cups`` if CUPS has it, else given back; ``in_cups``
is followed in CUPS; ``done`` is reported. A job is never handed to CUPS twice.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = ["STAGES", "Entry", "Journal", "cups_job_name"]

STAGES: Final = ("claimed", "handing", "in_cups", "done")
FILE_NAME: Final = "journal.json"


def cups_job_name(job_id: int, title: str) -> str:
    """The CUPS job name of a central job: found again by its prefix after a crash."""
    return f"printsrv-{job_id} {title}"


@dataclass
class Entry:
    """One job the agent holds (see the module docstring for ``stage``)."""

    job_id: int
    claim: str
    printer: str
    title: str
    user: str
    options: dict[str, str]
    pdf_sha256: str
    stage: str = "claimed"
    cups_job_id: int | None = None
    result: dict[str, Any] | None = field(default=None)


class Journal:
    """The journal file of one state directory; every change is written at once.

    Thread-safe: the agent writes from work threads (an fsync takes milliseconds, too long
    for its event loop). Writes are grouped: a ``put`` returns once a write that includes
    its change is on disk, and changes made while one write was under way share the next
    (one fsync for several jobs, each still written before the step it names).
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / FILE_NAME
        self.spool = state_dir / "spool"
        state_dir.mkdir(parents=True, exist_ok=True)
        self.spool.mkdir(exist_ok=True)
        self.entries: dict[int, Entry] = {}
        self._lock = threading.Lock()  # guards entries and the change counters
        self._writing = threading.Lock()  # one write of the file at a time
        self._changes = 0  # changes made to ``entries``
        self._written = 0  # changes the file includes
        self._synced = 0  # ... flushed to disk (fsync)
        if self.path.exists():
            data = json.loads(self.path.read_text(encoding="utf-8"))
            for item in data.get("jobs", []):
                entry = Entry(**item)
                self.entries[entry.job_id] = entry

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, jobs={sorted(self.entries)})"

    def pdf_path(self, job_id: int) -> Path:
        """Where the job's downloaded PDF is kept until CUPS is done with it."""
        return self.spool / f"{job_id}.pdf"

    def put(self, entry: Entry) -> None:
        """Record (or update) an entry, durably, before returning."""
        self.put_many([entry])

    def put_many(self, entries: list[Entry]) -> None:
        """Record (or update) several entries, durably, with one write, before returning."""
        for entry in entries:
            if entry.stage not in STAGES:
                raise ValueError(f"unknown journal stage {entry.stage!r}")
        with self._lock:
            for entry in entries:
                self.entries[entry.job_id] = entry
            self._changes += 1
            change = self._changes
        self._flush(change, durable=True)

    def forget(self, job_id: int) -> None:
        """Drop a job the central server knows the end of, and its PDF.

        Written at once but not flushed to disk by itself: should a power cut bring the job
        back, the central server answers that it has ended and it is forgotten again (it is
        never printed again: a stage before CUPS is given back, a stage in CUPS is looked
        up there).
        """
        with self._lock:
            dropped = self.entries.pop(job_id, None) is not None
            if dropped:
                self._changes += 1
                change = self._changes
        if dropped:
            self._flush(change, durable=False)
        self.pdf_path(job_id).unlink(missing_ok=True)

    def _flush(self, change: int, *, durable: bool) -> None:
        """Until the file includes ``change``: written by this call or by one that started
        after the change was made (group commit)."""
        with self._writing:
            if (self._synced if durable else self._written) >= change:
                return  # a write that began after our change has it
            with self._lock:
                upto = self._changes
                data = {
                    "jobs": [
                        asdict(e) for e in sorted(self.entries.values(), key=lambda e: e.job_id)
                    ]
                }
            self._write(data, durable=durable)
            self._written = upto
            if durable:
                self._synced = upto

    def _write(self, data: dict[str, Any], *, durable: bool) -> None:
        fd, temporary = tempfile.mkstemp(dir=self.state_dir, prefix=".journal-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, sort_keys=True)
                out.flush()
                if durable:
                    os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        if not durable:
            return
        directory = os.open(self.state_dir, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
