"""The agent's journal: what it holds survives a restart, and every write replaces the file
whole (no temporary file left behind, no half-written journal)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from printsrv.agents.journal import Entry, Journal, cups_job_name


def entry(job_id: int, stage: str = "claimed") -> Entry:
    return Entry(
        job_id=job_id,
        claim=f"1.{job_id}.x",
        printer="hall",
        title="notes.pdf",
        user="janet",
        options={"copies": "2"},
        pdf_sha256="0" * 64,
        stage=stage,
    )


def test_entries_survive_a_restart_and_forgotten_ones_leave_with_their_pdf(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    journal.put(entry(1))
    later = entry(2, "in_cups")
    later.cups_job_id = 17
    journal.put(later)
    journal.pdf_path(1).write_bytes(b"%PDF")
    journal.forget(1)
    assert not journal.pdf_path(1).exists()
    again = Journal(tmp_path / "state")
    assert list(again.entries) == [2]
    assert again.entries[2] == later
    assert [p.name for p in (tmp_path / "state").iterdir() if p.is_file()] == ["journal.json"]


def test_an_unknown_stage_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.put(entry(1))
    before = (tmp_path / "journal.json").read_text()
    with pytest.raises(ValueError):
        journal.put(entry(2, "printed"))
    assert (tmp_path / "journal.json").read_text() == before
    assert [item["job_id"] for item in json.loads(before)["jobs"]] == [1]


def test_the_cups_job_name_starts_with_the_central_id_alone() -> None:
    # Looked up by prefix after a crash: job 1's prefix must not match job 12's name.
    assert cups_job_name(12, "notes.pdf").startswith(cups_job_name(12, ""))
    assert not cups_job_name(12, "notes.pdf").startswith(cups_job_name(1, ""))
