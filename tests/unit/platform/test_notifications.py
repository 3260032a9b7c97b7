"""printsrv.platform.notifications: what one process announces, every listening server hears
(PostgreSQL LISTEN/NOTIFY), at commit and never on rollback; the loops that used to poll
wait for it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from support import wait_until

from printsrv.operations.installation import Installation
from printsrv.platform import properties as config
from printsrv.platform.notifications import Listener, Topic, announce, wait_for_change


@pytest.fixture
def listener(installation: Installation) -> Iterator[Listener]:
    """A listener of its own (another server, as far as the database can tell)."""
    if installation.db.backend != "postgresql":
        pytest.skip("notifications exist on PostgreSQL only (see the SQLite test below)")
    listener = Listener(installation.env.database_url)
    listener.start()
    try:
        wait_until(lambda: listener.listening, timeout=5)
        yield listener
    finally:
        listener.stop()


def _heard(listener: Listener, topic: Topic) -> threading.Event:
    heard = threading.Event()
    listener.on(topic, heard.set)
    return heard


def test_a_committed_announcement_is_heard(installation: Installation, listener: Listener) -> None:
    heard = _heard(listener, Topic.JOBS)
    with installation.db.transaction() as session:
        announce(session, Topic.JOBS)
        time.sleep(0.3)
        assert not heard.is_set(), "heard before the commit"
    assert heard.wait(2)


def test_a_rolled_back_announcement_is_never_heard(
    installation: Installation, listener: Listener
) -> None:
    heard = _heard(listener, Topic.JOBS)
    with pytest.raises(RuntimeError), installation.db.transaction() as session:
        announce(session, Topic.JOBS)
        raise RuntimeError("roll back")
    assert not heard.wait(1.5)


def test_each_topic_reaches_only_its_subscribers(
    installation: Installation, listener: Listener
) -> None:
    config_heard, jobs_heard = _heard(listener, Topic.CONFIG), _heard(listener, Topic.JOBS)
    with installation.db.transaction() as session:
        announce(session, Topic.CONFIG)
    assert config_heard.wait(2)
    assert not jobs_heard.wait(0.5)


def test_stop_is_prompt_and_ends_listening(listener: Listener) -> None:
    started = time.monotonic()
    listener.stop()
    assert time.monotonic() - started < 0.5
    assert not listener.listening
    listener.start()  # the fixture's stop() pairs with this one


def test_a_config_change_elsewhere_is_in_force_at_once_without_polling(
    installation: Installation,
) -> None:
    """A server's config follows another process's change because it heard of it: its own
    poll is set to a minute here, so only the notification can explain the change."""
    if installation.db.backend != "postgresql":
        pytest.skip("notifications exist on PostgreSQL only")
    listener = installation.notifications
    server_config = config.Config(installation.db, installation.hasher, listener)

    async def follow() -> float:
        listener.start()
        refresher = asyncio.create_task(server_config.keep_fresh(interval=60.0))
        try:
            await asyncio.to_thread(wait_until, lambda: listener.listening, 5)
            assert server_config.snapshot()["system.maintenance"] is False
            with installation.db.transaction() as session:
                config.set_property(session, "system.maintenance", "Y", hasher=installation.hasher)
            changed = time.monotonic()
            while server_config.snapshot()["system.maintenance"] is not True:
                assert time.monotonic() - changed < 1.0, "not in force within a second"
                await asyncio.sleep(0.01)
            return time.monotonic() - changed
        finally:
            refresher.cancel()
            await asyncio.gather(refresher, return_exceptions=True)
            listener.stop()

    assert asyncio.run(follow()) < 1.0


def test_on_sqlite_nothing_is_heard_and_the_loops_poll(installation: Installation) -> None:
    if installation.db.backend != "sqlite":
        pytest.skip("the SQLite half of the contract")
    listener = installation.notifications
    assert not listener.possible
    listener.start()  # a no-op
    assert not listener.listening

    async def pause() -> float:
        wake, cancel = listener.wake_on((Topic.JOBS,))
        started = time.monotonic()
        await wait_for_change(wake, listener, poll_interval=0.05, heard_interval=60.0)
        cancel()
        return time.monotonic() - started

    assert asyncio.run(pause()) < 1.0  # the poll interval, not the heard one
