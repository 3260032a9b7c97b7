"""A read stream whose database cannot be reached says so: DatabaseUnavailable (503), not a
driver error (500). Found by the soak (bench/soak.py): a CSV report asked for while
PostgreSQL restarted was answered 500."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session
from support import free_port

from printsrv.errors import DatabaseUnavailable
from printsrv.platform.database import Database
from printsrv.platform.streams import ReadStream


def nowhere() -> Database:
    """A PostgreSQL URL on a port nothing listens on: every connection is refused."""
    return Database(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere")


def test_opening_a_stream_without_the_database_raises_database_unavailable() -> None:
    def produce(session: Session) -> Iterator[bytes]:
        session.execute(text("SELECT 1"))  # what a report's selection check does first
        return iter([b"never"])

    db = nowhere()
    with pytest.raises(DatabaseUnavailable):
        asyncio.run(ReadStream.open(db, produce))
    db.dispose()


def test_reading_a_stream_without_the_database_raises_database_unavailable() -> None:
    def produce(session: Session) -> Iterator[bytes]:
        yield b"header\r\n"
        yield from (bytes(row[0], "ascii") for row in session.execute(text("SELECT 'x'")))

    async def read_all() -> list[bytes]:
        stream = await ReadStream.open(db, produce)
        try:
            return [chunk async for chunk in stream]
        finally:
            stream.close()

    db = nowhere()
    with pytest.raises(DatabaseUnavailable):
        asyncio.run(read_all())
    db.dispose()
