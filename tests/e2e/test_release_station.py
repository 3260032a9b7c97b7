"""Release at the printer: the station page and the terminal API, against a private cupsd,
over a real socket (and once in a real headless Chromium)."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin_support import assert_accessible
from printing_support import (
    PrintSetup,
    hold,
    print_charges,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    set_config_live,
    stored_files,
)
from sqlalchemy import func, select
from support import TEST_SECRET, LiveServer, ServeProcess, open_jsonrpc, rpc, wait_until

from printsrv.documents.models import Document
from printsrv.people import users
from printsrv.printing import access, rules
from printsrv.release.expiry import sweep
from printsrv.release.identify import UNKNOWN_CARD, WRONG_PIN
from printsrv.release.models import ReleaseThrottle, StationSession
from printsrv.web.station import STATION_COOKIE

CARD = "0004711829"
PIN = "2468"
# A person's list reloads itself by a timed meta refresh into a warning, then to the card
# field, and the thank-you page returns to the card field; axe-core's rule meta-refresh
# (WCAG 2.2.1) flags every timed refresh as a time limit. The sign-out is needed at a
# shared kiosk (the next person must not see the last one's documents), and the person
# can extend it: "More time" starts release.station.idle-secs again, and the warning comes
# 20 seconds before the end with "More time" in the focus (the tests below check that).
# axe cannot see either, hence this one exception. The thank-you page comes after the
# sign-out: nothing is left to extend, and the list of what printed should not stay.
SIGN_OUT = ("meta-refresh",)
FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def server(printing_setup: PrintSetup) -> Iterator[LiveServer]:  # noqa: F811
    """janet with a card and a PIN, 0.10 a side on capture, loopback as the only station."""
    setup = printing_setup
    with setup.installation.db.transaction() as session:
        users.set_user_fields(
            session, setup.user, card_number=CARD, pin=PIN, hasher=setup.installation.hasher
        )
    setup.set_cost("capture", "0.10")
    set_config_live(
        setup.installation, {"release.station.ip-addresses-allowed": "127.0.0.1/32, ::1/128"}
    )
    live = LiveServer(setup.installation).start()
    yield live
    live.stop()


def terminal(server: LiveServer, body: Any, **headers: str) -> httpx.Response:
    """POST /restful/v1/release as a terminal would."""
    if isinstance(body, (bytes, str)):
        return httpx.post(f"{server.url}/restful/v1/release", content=body, headers=headers)
    return httpx.post(f"{server.url}/restful/v1/release", json=body, headers=headers, timeout=30)


def expires_at(setup: PrintSetup) -> datetime:
    """When the one station session there is ends, unless its person acts."""
    with setup.installation.db.read() as session:
        (deadline,) = session.scalars(select(StationSession.expires_at)).all()
    return deadline


def live_station_sessions(setup: PrintSetup) -> int:
    with setup.installation.db.read() as session:
        return session.scalar(
            select(func.count())
            .select_from(StationSession)
            .where(StationSession.expires_at > datetime.now(UTC))
        )


def card_at_station(station: httpx.Client, url: str) -> httpx.Response:
    """janet's card at the station page ``url``: the page that lists her held documents."""
    form = station.get(url).text
    return station.post(
        f"{url}/identify", data={"csrf_token": csrf_of(form), "card": CARD}, follow_redirects=True
    )


def at_the_same_moment(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run the calls in threads that start together; their answers, in the calls' order."""
    start = threading.Barrier(len(calls))
    answers: list[httpx.Response | None] = [None] * len(calls)

    def run(index: int) -> None:
        start.wait()
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert all(a is not None for a in answers), "a call did not answer within 30 s"
    return [a for a in answers if a is not None]


def via_proxy(address: str) -> dict[str, str]:
    """Headers a trusted TLS proxy in front of printsrv adds for a station at ``address``."""
    return {"X-Forwarded-For": address, "X-Forwarded-Proto": "https"}


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]  # type: ignore[index]


# --- the station page ---------------------------------------------------------------------------


def too_small_at_arms_length(driver: Any) -> list[str]:
    """What on the station's card is smaller than a finger (a control under 44 CSS pixels
    either way, WCAG 2.5.5) or set in type under 20 pixels; an empty list when nothing is."""
    return driver.execute_script(
        """
        const small = [];
        const controls = '.station button, .station input:not([type=hidden]), .station a';
        for (const e of document.querySelectorAll(controls)) {
          const box = e.getBoundingClientRect();
          if (box.height < 44 || box.width < 44) {
            small.push(`${e.id || e.name || e.tagName}: ${box.width}x${box.height} px`);
          }
        }
        const texts =
          controls + ', .station p, .station label, .station th, .station td, .station li'
          + ', .station span';
        for (const e of document.querySelectorAll(texts)) {
          const size = parseFloat(getComputedStyle(e).fontSize);
          if (size < 20) small.push(`${e.id || e.tagName} "${e.textContent.trim()}": ${size} px`);
        }
        return small;
        """
    )


def test_a_card_typed_at_the_station_page_releases_to_the_printer(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    chromium: Any,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    setup = printing_setup
    document_id = hold(server, setup, "Timetable.pdf", pages=3)
    # A document this printer cannot take as asked: listed with why, in place of Print.
    poster = hold(server, setup, "Poster.pdf", pages=1)
    with setup.installation.db.transaction() as session:
        session.get_one(Document, poster).ipp_options = '{"page-ranges": "5-9"}'
    driver = chromium
    driver.set_window_size(800, 1280)  # a tablet on a stand beside the printer
    driver.get(f"{server.url}/release/capture")
    # Readable and touchable at arm's length, and nothing serious for axe-core.
    assert too_small_at_arms_length(driver) == []
    assert_accessible(driver)
    # The card field has the focus: a keyboard-wedge reader types the number and Enter.
    focused = driver.switch_to.active_element
    assert focused.get_attribute("id") == "card"
    focused.send_keys(CARD + Keys.ENTER)
    row = WebDriverWait(driver, 15).until(
        expected_conditions.presence_of_element_located((By.ID, f"held-{document_id}"))
    )
    assert "Timetable.pdf" in row.text and "3" in row.text and "0.30" in row.text
    problem = driver.find_element(By.CSS_SELECTOR, f"#held-{poster} .message")
    assert "page-ranges" in problem.text and "the document has 1 pages" in problem.text
    assert not driver.find_elements(By.ID, f"print-{poster}")
    assert too_small_at_arms_length(driver) == []
    assert_accessible(driver, but_for=SIGN_OUT)
    # "Print all" has the focus now: Enter releases, no mouse needed.
    focused = driver.switch_to.active_element
    assert focused.get_attribute("id") == "print-all"
    focused.send_keys(Keys.ENTER)
    done = WebDriverWait(driver, 15).until(
        expected_conditions.presence_of_element_located((By.ID, f"outcome-{document_id}"))
    )
    assert "Timetable.pdf: sent to capture (0.30)" in done.text
    assert "page-ranges" in driver.find_element(By.ID, f"outcome-{poster}").text
    assert too_small_at_arms_length(driver) == []
    assert_accessible(driver, but_for=SIGN_OUT)
    # The station has forgotten janet: the next visit starts at the card field.
    driver.get(f"{server.url}/release/capture")
    assert driver.switch_to.active_element.get_attribute("id") == "card"
    assert not driver.find_elements(By.ID, f"held-{document_id}")
    job = setup.wait_job(setup.jobs()[0].id)
    assert job.state == "completed"
    assert setup.cups.read_env("capture", job.cups_job_id)["TITLE"] == "Timetable.pdf"
    assert len(setup.jobs()) == 1 and print_charges(setup) == 1
    assert setup.balance() == Decimal("9.70")  # 3 pages x 0.10


def test_a_pin_identifies_on_the_page_and_the_station_forgets_after_release(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    first = hold(server, setup, "one.pdf", pages=1)
    second = hold(server, setup, "two.pdf", pages=2)
    url = f"{server.url}/release/capture"
    with httpx.Client() as station:
        form = station.get(url)
        assert form.status_code == 200 and 'id="pin-form"' in form.text
        assert "http-equiv" not in form.text  # a blank form does not reload under someone
        wrong = station.post(
            f"{url}/identify",
            data={"csrf_token": csrf_of(form.text), "user": "janet", "pin": "1111"},
        )
        assert wrong.status_code == 403 and WRONG_PIN in wrong.text
        listed = station.post(
            f"{url}/identify",
            data={"csrf_token": csrf_of(form.text), "user": "JANET", "pin": PIN},
            follow_redirects=True,
        )
        assert listed.status_code == 200
        assert f'id="held-{first}"' in listed.text and f'id="held-{second}"' in listed.text
        # 30 seconds from her last input: the page says so, and reloads itself 20 seconds
        # before the end to warn her (then to the form, once the station forgets her).
        assert re.search(r'id="time-left">Time left: (30|29) seconds', listed.text)
        assert 'id="more-time"' in listed.text
        refresh = re.search(
            r'http-equiv="refresh" content="(\d+);url=/release/capture"', listed.text
        )
        assert refresh is not None and 8 <= int(refresh[1]) <= 10, listed.text
        done = station.post(
            f"{url}/print", data={"csrf_token": csrf_of(listed.text), "document": str(second)}
        )
        assert done.status_code == 200 and "two.pdf: sent to capture (0.20)" in done.text
        # Forgotten: the same session cannot release the other document.
        again = station.post(
            f"{url}/print",
            data={"csrf_token": csrf_of(listed.text), "document": str(first)},
            follow_redirects=False,
        )
        assert again.status_code == 303
        assert 'id="card-form"' in station.get(url).text
    assert len(setup.jobs()) == 1 and print_charges(setup) == 1


def test_the_station_forgets_a_person_after_the_idle_time(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    document_id = hold(server, setup)
    set_config_live(setup.installation, {"release.station.idle-secs": "5"})
    url = f"{server.url}/release/capture"
    with httpx.Client() as station:
        listed = card_at_station(station, url)
        assert f'id="held-{document_id}"' in listed.text
        time.sleep(5.5)
        later = station.get(url)
        assert 'id="card-form"' in later.text and f'id="held-{document_id}"' not in later.text
        late = station.post(
            f"{url}/print",
            data={"csrf_token": csrf_of(listed.text), "document": "all"},
            follow_redirects=False,
        )
        assert late.status_code == 303
    assert setup.jobs() == [] and print_charges(setup) == 0


def test_more_time_starts_the_idle_time_again_on_every_machine(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    """The deadline lives in the session's row: "More time" pressed on a page another
    machine served holds on the first machine, and once it has run out, nothing revives it."""
    setup = printing_setup
    document_id = hold(server, setup)
    set_config_live(setup.installation, {"release.station.idle-secs": "5"})
    other = LiveServer(setup.installation).start()
    try:
        url, elsewhere = f"{server.url}/release/capture", f"{other.url}/release/capture"
        with httpx.Client() as station:
            listed = card_at_station(station, url)
            identified = time.monotonic()
            first_deadline = expires_at(setup)
            # Under 20 seconds in all: the warning shows from the start.
            assert re.search(r'id="time-left" role="alert">Are you still there\?', listed.text)
            time.sleep(3)
            more = station.post(
                f"{elsewhere}/more",
                data={"csrf_token": csrf_of(listed.text)},
                follow_redirects=True,
            )
            extended = time.monotonic()
            assert more.status_code == 200 and f'id="held-{document_id}"' in more.text
            assert expires_at(setup) >= first_deadline + timedelta(seconds=2.5)
            # Past the first deadline: the first machine keeps janet, and showing the page
            # (no input) does not extend her time.
            time.sleep(max(0.0, identified + 6 - time.monotonic()))
            later = station.get(url)
            assert f'id="held-{document_id}"' in later.text
            # No more input: forgotten on every machine, and "More time" comes too late.
            time.sleep(max(0.0, extended + 5.5 - time.monotonic()))
            assert live_station_sessions(setup) == 0
            too_late = station.post(
                f"{url}/more", data={"csrf_token": csrf_of(listed.text)}, follow_redirects=True
            )
            assert 'id="card-form"' in too_late.text
            assert f'id="held-{document_id}"' not in too_late.text
            assert live_station_sessions(setup) == 0
    finally:
        other.stop()
    assert setup.jobs() == [] and print_charges(setup) == 0


def time_left(driver: Any) -> tuple[str, str | None]:
    """The station page's time notice, and its role (alert: the warning); ("", None) while
    the page reloads."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        notice = driver.find_element(By.ID, "time-left")
        return notice.text, notice.get_attribute("role")
    except (NoSuchElementException, StaleElementReferenceException):
        return "", None


def test_the_station_page_warns_before_signing_out_and_more_time_extends(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    chromium: Any,
) -> None:
    """In a real browser: the page says how long is left, reloads itself into a warning 20
    seconds before the end with "More time" in the focus, and Space there starts the time
    again."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    setup = printing_setup
    document_id = hold(server, setup)
    set_config_live(setup.installation, {"release.station.idle-secs": "23"})
    driver = chromium
    driver.set_window_size(800, 1280)
    driver.get(f"{server.url}/release/capture")
    driver.switch_to.active_element.send_keys(CARD + Keys.ENTER)
    WebDriverWait(driver, 15).until(
        expected_conditions.presence_of_element_located((By.ID, f"held-{document_id}"))
    )
    text, role = time_left(driver)
    assert re.match(r"Time left: (23|22) seconds", text) and role is None, text
    assert driver.switch_to.active_element.get_attribute("id") == "print-all"
    assert too_small_at_arms_length(driver) == []
    assert_accessible(driver, but_for=SIGN_OUT)
    first_deadline = expires_at(setup)

    # Nobody touches it: about 3 seconds later it has reloaded itself into the warning.
    WebDriverWait(driver, 10).until(lambda d: time_left(d)[1] == "alert")
    warning = re.match(
        r"Are you still there\? This station signs you out in (\d+) seconds", time_left(driver)[0]
    )
    assert warning is not None and 15 <= int(warning[1]) <= 20, time_left(driver)
    assert driver.switch_to.active_element.get_attribute("id") == "more-time"
    assert too_small_at_arms_length(driver) == []
    assert_accessible(driver, but_for=SIGN_OUT)
    assert expires_at(setup) == first_deadline  # the reload was no input

    # Space on the focused "More time": 23 seconds again, from now.
    pressed = datetime.now(UTC)
    driver.switch_to.active_element.send_keys(Keys.SPACE)
    WebDriverWait(driver, 10).until(lambda d: time_left(d)[0].startswith("Time left"))
    assert expires_at(setup) >= pressed + timedelta(seconds=22)
    assert driver.find_element(By.ID, f"held-{document_id}")
    assert setup.jobs() == [] and print_charges(setup) == 0


def test_a_person_who_asks_for_more_time_outlives_the_first_deadline_and_silence_still_signs_out(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    chromium: Any,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    setup = printing_setup
    document_id = hold(server, setup)
    set_config_live(setup.installation, {"release.station.idle-secs": "6"})
    driver = chromium
    driver.set_window_size(800, 1280)
    url = f"{server.url}/release/capture"
    driver.get(url)
    driver.switch_to.active_element.send_keys(CARD + Keys.ENTER)
    WebDriverWait(driver, 15).until(
        expected_conditions.presence_of_element_located((By.ID, f"held-{document_id}"))
    )
    identified = time.monotonic()
    first_deadline = expires_at(setup)
    # Under 20 seconds in all, the warning shows from the start, More time in the focus.
    assert time_left(driver)[1] == "alert"
    more = driver.switch_to.active_element
    assert more.get_attribute("id") == "more-time" and more.text == "More time"
    time.sleep(3)
    more.send_keys(Keys.ENTER)
    WebDriverWait(driver, 10).until(expected_conditions.staleness_of(more))
    WebDriverWait(driver, 10).until(
        expected_conditions.presence_of_element_located((By.ID, f"held-{document_id}"))
    )
    assert expires_at(setup) >= first_deadline + timedelta(seconds=2.5)
    # Past the first deadline, janet's documents are still hers to print.
    time.sleep(max(0.0, identified + 7 - time.monotonic()))
    driver.get(url)
    assert driver.find_element(By.ID, f"held-{document_id}")
    # Then nothing: the page goes back to the card field by itself, and the server has
    # forgotten her.
    WebDriverWait(driver, 10).until(
        expected_conditions.presence_of_element_located((By.ID, "card-form"))
    )
    assert driver.switch_to.active_element.get_attribute("id") == "card"
    assert not driver.find_elements(By.ID, f"held-{document_id}")
    assert live_station_sessions(setup) == 0
    assert setup.jobs() == [] and print_charges(setup) == 0


def test_station_forms_need_their_csrf_token(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    document_id = hold(server, setup)
    url = f"{server.url}/release/capture"
    with httpx.Client() as station:
        form = station.get(url).text
        forged = station.post(f"{url}/identify", data={"csrf_token": "x" * 43, "card": CARD})
        assert forged.status_code == 403 and "This form has expired" in forged.text
        # A station past the allowlist still has its form read within the limit.
        huge = station.post(f"{url}/identify", content=b"card=" + b"1" * 100_000, headers=FORM_TYPE)
        assert huge.status_code == 413
        listed = station.post(
            f"{url}/identify",
            data={"csrf_token": csrf_of(form), "card": CARD},
            follow_redirects=True,
        )
        assert f'id="held-{document_id}"' in listed.text
        refused = station.post(
            f"{url}/print", data={"csrf_token": csrf_of(form), "document": "all"}
        )
        assert refused.status_code == 403
        deadline = expires_at(setup)
        more = station.post(f"{url}/more", data={"csrf_token": csrf_of(form)})
        assert more.status_code == 403 and expires_at(setup) == deadline
    assert setup.jobs() == [] and print_charges(setup) == 0


def test_a_card_and_pin_set_through_json_rpc_identify_at_a_terminal(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    open_jsonrpc(setup.installation, admin=True)
    with setup.installation.db.transaction() as session:
        users.add_user(session, "rijk")
    set_config_live(setup.installation, {})  # the server has the JSON-RPC settings

    def set_properties(**fields: object) -> dict[str, Any]:
        return rpc(server, "setUserProperties", {"user": {"userName": "rijk", **fields}})

    assert "error" not in set_properties(card="RIJK-77", pin="13579")
    with setup.installation.db.read() as session:
        pin_hash = users.get_user(session, "rijk").pin_hash
    assert pin_hash and "13579" not in pin_hash  # a keyed hash, not the PIN
    by_card = terminal(server, {"printer": "capture", "card": "RIJK-77"})
    assert by_card.status_code == 200 and by_card.json()["result"]["user"] == "rijk"
    by_pin = terminal(server, {"printer": "capture", "user": "rijk", "pin": "13579"})
    assert by_pin.status_code == 200 and by_pin.json()["result"]["user"] == "rijk"

    # janet's card: refused without saying whose it is; rijk keeps his own.
    clash = set_properties(card=CARD)
    assert clash["error"]["code"] == -32002
    assert "taken by another user" in clash["error"]["message"] and "janet" not in str(clash)
    bad_pin = set_properties(pin="12a4")
    assert bad_pin["error"]["code"] == -32602 and "4 to 8 digits" in bad_pin["error"]["message"]
    assert terminal(server, {"printer": "capture", "card": "RIJK-77"}).status_code == 200
    assert (
        terminal(server, {"printer": "capture", "card": CARD}).json()["result"]["user"] == "janet"
    )

    # Removed: neither identifies rijk any more.
    assert "error" not in set_properties(removeCard=True, removePin=True)
    gone_card = terminal(server, {"printer": "capture", "card": "RIJK-77"})
    assert gone_card.status_code == 401 and gone_card.json()["error"] == UNKNOWN_CARD
    gone_pin = terminal(server, {"printer": "capture", "user": "rijk", "pin": "13579"})
    assert gone_pin.status_code == 401 and gone_pin.json()["error"] == WRONG_PIN


# --- who may be a station ------------------------------------------------------------------------


def test_a_station_outside_the_allowlist_is_refused(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    hold(server, setup)
    card = {"printer": "capture", "card": CARD}
    for allowed in ("", "10.0.0.0/8"):  # void: there are no stations at all
        set_config_live(setup.installation, {"release.station.ip-addresses-allowed": allowed})
        page = httpx.get(f"{server.url}/release/capture")
        assert page.status_code == 403
        assert "Client address 127.0.0.1 is not a release station" in page.text
        assert 'name="card"' not in page.text
        for action in ("identify", "print", "leave", "more"):  # every form's target, too
            posted = httpx.post(f"{server.url}/release/capture/{action}", data={"card": CARD})
            assert posted.status_code == 403 and "is not a release station" in posted.text
            # Refused before the form is read: a body over the form limit is no 413.
            huge = httpx.post(
                f"{server.url}/release/capture/{action}",
                content=b"card=" + b"1" * 100_000,
                headers=FORM_TYPE,
            )
            assert huge.status_code == 403 and "is not a release station" in huge.text, action
        api = terminal(server, card)
        assert api.status_code == 403 and api.json()["succes"] is False
        # Refused before the body is read: a stranger learns nothing of its shape, and
        # cannot make the server read up to the limit either.
        assert terminal(server, b"not json").status_code == 403
        assert terminal(server, b" " * (16 * 1024 + 1)).status_code == 403

    # Behind a trusted proxy, the station is the address the proxy names.
    set_config_live(
        setup.installation,
        {
            "release.station.ip-addresses-allowed": "10.0.0.0/8",
            "server.trusted-proxies": "127.0.0.1/32",
        },
    )
    assert terminal(server, card, **via_proxy("10.1.2.3")).status_code == 200
    assert terminal(server, card, **via_proxy("192.0.2.7")).status_code == 403
    # A station off loopback without TLS would send card numbers in the clear.
    plain = terminal(server, card, **{"X-Forwarded-For": "10.1.2.3"})
    assert plain.status_code == 403 and "https" in plain.json()["error"]
    # In maintenance, stations are kept out like every user-facing door.
    set_config_live(setup.installation, {"system.maintenance": "Y"})
    closed = terminal(server, card, **via_proxy("10.1.2.3"))
    assert closed.status_code == 503 and "Retry-After" in closed.headers
    assert setup.jobs() == [] and print_charges(setup) == 0


def test_a_printer_closed_to_the_person_is_refused_once_they_are_known(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    hold(server, setup)
    with setup.installation.db.transaction() as session:
        users.add_group(session, "visitors")
        users.add_member(session, "visitors", setup.user)
        access.grant(session, "capture", "visitors", "DENY")
    refused = terminal(server, {"printer": "capture", "card": CARD, "documents": "all"})
    assert refused.status_code == 403, refused.text
    url = f"{server.url}/release/capture"
    with httpx.Client() as station:
        csrf = csrf_of(station.get(url).text)
        page = station.post(f"{url}/identify", data={"csrf_token": csrf, "card": CARD})
        assert page.status_code == 403 and STATION_COOKIE not in station.cookies
    assert setup.jobs() == [] and print_charges(setup) == 0


# --- guessing ----------------------------------------------------------------------------------


def test_a_wrong_pin_six_times_is_throttled_and_then_even_the_right_pin_is_refused(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    hold(server, setup)
    set_config_live(
        setup.installation,
        {
            "release.station.ip-addresses-allowed": "127.0.0.1/32, 10.0.0.0/8",
            "server.trusted-proxies": "127.0.0.1/32",
        },
    )
    guess = {"printer": "capture", "user": "janet", "pin": "0000"}
    for _ in range(5):
        wrong = terminal(server, guess)
        assert wrong.status_code == 401 and wrong.json()["error"] == WRONG_PIN
    sixth = terminal(server, guess)
    assert sixth.status_code == 429
    assert 240 <= int(sixth.headers["Retry-After"]) <= 300
    right = {**guess, "pin": PIN}
    locked_station = terminal(server, right)
    assert locked_station.status_code == 429 and "Retry-After" in locked_station.headers
    # From another station, janet is locked too, and is told just what a wrong PIN hears.
    locked_user = terminal(server, right, **via_proxy("10.9.9.9"))
    assert locked_user.status_code == 401 and locked_user.json()["error"] == WRONG_PIN
    # A card still identifies her elsewhere: the lock is against guessing her PIN.
    assert (
        terminal(server, {"printer": "capture", "card": CARD}, **via_proxy("10.9.9.8")).status_code
        == 200
    )
    # Unknown cards count against the station too.
    for _ in range(5):
        unknown = terminal(server, {"printer": "capture", "card": "999"}, **via_proxy("10.7.7.7"))
        assert unknown.status_code == 401 and unknown.json()["error"] == UNKNOWN_CARD
    assert (
        terminal(server, {"printer": "capture", "card": CARD}, **via_proxy("10.7.7.7")).status_code
        == 429
    )

    with setup.installation.db.read() as session:
        counts = dict(session.execute(select(ReleaseThrottle.key, ReleaseThrottle.failures)).all())
    assert counts["station:127.0.0.1"] >= 5 and counts["user:janet"] >= 5

    # Once the window has passed, the right PIN works again.
    with setup.installation.db.transaction() as session:
        for row in session.scalars(select(ReleaseThrottle)):
            row.window_start = row.window_start - timedelta(minutes=6)
    assert terminal(server, right).status_code == 200
    assert setup.jobs() == [] and print_charges(setup) == 0


def test_failures_on_two_server_processes_add_up_to_one_lock(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    tmp_path: Path,
) -> None:
    """Two machines behind one load balancer: a second `printsrv serve` process with its own
    memory, on the same database. A guesser who spreads the attempts over both is stopped
    after five all the same, at the station and, from any station, for the user."""
    setup = printing_setup
    set_config_live(
        setup.installation,
        {
            "release.station.ip-addresses-allowed": "127.0.0.1/32, 10.0.0.0/8",
            "server.trusted-proxies": "127.0.0.1/32",
        },
    )
    env = {
        "PRINTSRV_HOME": str(setup.installation.env.home),
        "PRINTSRV_DATABASE_URL": setup.installation.env.database_url,
        "PRINTSRV_SECRET_KEY": TEST_SECRET,
    }
    other = ServeProcess(env, "--no-access-log", log=tmp_path / "other.log").start()
    try:
        url = f"http://127.0.0.1:{other.port}"
        guess = {"printer": "capture", "user": "janet", "pin": "0000"}
        for machine in (server.url, url, server.url, url, server.url):
            wrong = httpx.post(f"{machine}/restful/v1/release", json=guess, timeout=30)
            assert wrong.status_code == 401 and wrong.json()["error"] == WRONG_PIN, machine
        right = {**guess, "pin": PIN}
        for machine in (url, server.url):
            throttled = httpx.post(f"{machine}/restful/v1/release", json=right, timeout=30)
            assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
        # From another station, through the other process: janet's PIN is locked there too.
        elsewhere = httpx.post(
            f"{url}/restful/v1/release", json=right, headers=via_proxy("10.4.4.4"), timeout=30
        )
        assert elsewhere.status_code == 401 and elsewhere.json()["error"] == WRONG_PIN
    finally:
        other.stop()
    assert setup.jobs() == [] and print_charges(setup) == 0


def test_the_station_page_says_429_with_retry_after_when_throttled(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    url = f"{server.url}/release/capture"
    with httpx.Client() as station:
        csrf = csrf_of(station.get(url).text)
        for _ in range(5):
            wrong = station.post(f"{url}/identify", data={"csrf_token": csrf, "card": "12345"})
            assert wrong.status_code == 403 and UNKNOWN_CARD in wrong.text
        throttled = station.post(f"{url}/identify", data={"csrf_token": csrf, "card": CARD})
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
        assert "Too many failed attempts at this station" in throttled.text


# --- the terminal API ----------------------------------------------------------------------------


def test_a_terminal_lists_and_releases_held_documents(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    first = hold(server, setup, "a.pdf", pages=1)
    second = hold(server, setup, "b.pdf", pages=2)
    listed = terminal(server, {"printer": "capture", "card": CARD})
    assert listed.status_code == 200, listed.text
    result = listed.json()["result"]
    assert result["user"] == "janet" and result["printer"] == "capture"
    assert [(d["id"], d["pages"], d["price"]) for d in result["documents"]] == [
        (second, 2, "0.200000"),
        (first, 1, "0.100000"),
    ]
    assert "released" not in result
    one = terminal(
        server, {"printer": "capture", "user": "janet", "pin": PIN, "documents": [first]}
    )
    assert one.status_code == 200, one.text
    assert one.json()["result"]["released"] == [
        {"id": first, "status": "printing", "cost": "0.100000", "message": ""}
    ]
    assert [d["id"] for d in one.json()["result"]["documents"]] == [second]
    # Released already, or someone else's, or missing: refused per document, nothing charged.
    rest = terminal(
        server, {"printer": "capture", "card": CARD, "documents": [first, 999999, second]}
    )
    released = rest.json()["result"]["released"]
    assert [(r["id"], r["status"]) for r in released] == [
        (first, "refused"),
        (999999, "refused"),
        (second, "printing"),
    ]
    assert "already been released" in released[0]["message"]
    assert "is not in your inbox" in released[1]["message"]
    assert rest.json()["result"]["documents"] == []
    assert (
        terminal(server, {"printer": "capture", "card": CARD, "documents": "all"}).json()["result"][
            "released"
        ]
        == []
    )
    for job in setup.jobs():
        assert setup.wait_job(job.id).state == "completed"
    assert print_charges(setup) == 2 and setup.balance() == Decimal("9.70")


def test_a_document_a_rule_holds_for_approval_is_no_longer_offered_at_a_station(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    """Print rules apply at a station as everywhere: a release a rule holds waits for an
    approver, uncharged, and the station stops offering it (as the user's page does)."""
    setup = printing_setup
    rules.add_rule(
        setup.installation.db,
        name="big-jobs",
        scope="all",
        condition="pages>3",
        action="hold",
        message="A teacher approves big jobs",
    )
    small = hold(server, setup, "small.pdf", pages=1)
    big = hold(server, setup, "big.pdf", pages=4)
    asked = terminal(server, {"printer": "capture", "card": CARD, "documents": [big]})
    assert asked.status_code == 200, asked.text
    assert asked.json()["result"]["released"] == [
        {
            "id": big,
            "status": "waiting",
            "cost": "0.000000",
            "message": "A teacher approves big jobs",
        }
    ]
    assert [d["id"] for d in asked.json()["result"]["documents"]] == [small]
    url = f"{server.url}/release/capture"
    with httpx.Client() as station:
        listed = card_at_station(station, url)
        assert f'id="held-{small}"' in listed.text and f'id="held-{big}"' not in listed.text
        done = station.post(
            f"{url}/print", data={"csrf_token": csrf_of(listed.text), "document": "all"}
        )
        assert done.status_code == 200
        assert f'id="outcome-{small}"' in done.text and f'id="outcome-{big}"' not in done.text
    (job,) = setup.jobs()
    assert setup.wait_job(job.id).state == "completed"
    assert print_charges(setup) == 1 and setup.balance() == Decimal("9.90")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"printer": "nope", "card": CARD}, 404, "Printer 'nope' is not known"),
        ({"card": CARD}, 400, "printer is missing"),
        ({"printer": "capture"}, 400, "Give card, or user and pin"),
        ({"printer": "capture", "user": "janet"}, 400, "pin is missing"),
        ({"printer": "capture", "user": "janet", "pin": "24a8"}, 400, "pin must be 4 to 8 digits"),
        ({"printer": "capture", "user": "janet", "pin": 2468}, 400, "pin must be a string"),
        ({"printer": "capture", "card": CARD, "pin": PIN}, 400, "either card, or user and pin"),
        ({"printer": "capture", "card": CARD, "colour": "y"}, 400, "Field 'colour' is not known"),
        ({"printer": "capture", "card": CARD, "documents": []}, 400, "documents must be"),
        ({"printer": "capture", "card": CARD, "documents": ["1"]}, 400, "documents must be"),
        ({"printer": "capture", "card": CARD, "documents": "some"}, 400, "documents must be"),
        (["capture", CARD], 400, "must be a JSON object"),
        (b'{"printer": "capture", "card": NaN}', 400, "not valid JSON"),
        (b"", 400, "must be a JSON object"),
    ],
)
def test_bad_terminal_requests_name_the_field_and_change_nothing(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    body: Any,
    status: int,
    message: str,
) -> None:
    setup = printing_setup
    hold(server, setup)
    refused = terminal(server, body)
    assert refused.status_code == status, refused.text
    assert refused.json()["succes"] is False and message in refused.json()["error"]
    with setup.installation.db.read() as session:
        # A malformed request is no guess: nothing is counted against anyone.
        assert session.scalar(select(func.count()).select_from(ReleaseThrottle)) == 0
    assert setup.jobs() == [] and print_charges(setup) == 0


def test_two_stations_releasing_one_document_at_once_print_and_charge_it_once(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    set_config_live(
        setup.installation,
        {
            "release.station.ip-addresses-allowed": "10.0.0.0/8",
            "server.trusted-proxies": "127.0.0.1/32",
        },
    )
    for _ in range(3):  # a few rounds: the race must be met, not dodged
        document_id = hold(server, setup)
        start = threading.Barrier(2)
        answers: list[httpx.Response] = []

        def release(
            station: str,
            document_id: int = document_id,
            start: threading.Barrier = start,
            answers: list[httpx.Response] = answers,
        ) -> None:
            body = {"printer": "capture", "card": CARD, "documents": [document_id]}
            start.wait()
            answers.append(terminal(server, body, **via_proxy(station)))

        threads = [threading.Thread(target=release, args=(s,)) for s in ("10.0.0.1", "10.0.0.2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        outcomes = sorted(a.json()["result"]["released"][0]["status"] for a in answers)
        assert outcomes == ["printing", "refused"], [a.text for a in answers]
    jobs = setup.jobs()
    assert len(jobs) == 3 and print_charges(setup) == 3
    for job in jobs:
        assert setup.wait_job(job.id).state == "completed"
    assert setup.balance() == Decimal("9.40")  # 3 documents x 2 pages x 0.10


def test_a_station_page_and_a_terminal_releasing_one_document_at_once_print_it_once(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    """The page's release path and the terminal's cross: a person taps Print at the kiosk
    while their MFP app releases the same document."""
    setup = printing_setup
    set_config_live(
        setup.installation,
        {
            "release.station.ip-addresses-allowed": "127.0.0.1/32, 10.0.0.0/8",
            "server.trusted-proxies": "127.0.0.1/32",
        },
    )
    url = f"{server.url}/release/capture"
    for _ in range(3):  # a few rounds: the race must be met, not dodged
        document_id = hold(server, setup)
        with httpx.Client(timeout=30) as station:
            listed = card_at_station(station, url)
            assert f'id="held-{document_id}"' in listed.text
            tap = {"csrf_token": csrf_of(listed.text), "document": str(document_id)}
            app = {"printer": "capture", "card": CARD, "documents": [document_id]}
            page, api = at_the_same_moment(
                partial(station.post, f"{url}/print", data=tap),
                partial(terminal, server, app, **via_proxy("10.0.0.2")),
            )
        assert page.status_code == 200 and api.status_code == 200, (page.text, api.text)
        page_printed = f'id="outcome-{document_id}" class="notice"' in page.text
        api_printed = api.json()["result"]["released"][0]["status"] == "printing"
        assert page_printed != api_printed, (page.text, api.text)
    jobs = setup.jobs()
    assert len(jobs) == 3 and print_charges(setup) == 3
    for job in jobs:
        assert setup.wait_job(job.id).state == "completed"
    assert setup.balance() == Decimal("9.40")  # 3 documents x 2 pages x 0.10


# --- held documents expire -----------------------------------------------------------------------


def test_held_documents_past_the_hold_hours_are_removed_and_never_charged(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    installation = setup.installation
    old = hold(server, setup, "old.pdf", pages=1)
    printed = hold(server, setup, "printed.pdf", pages=3)
    fresh = hold(server, setup, "fresh.pdf", pages=2)
    answer = terminal(server, {"printer": "capture", "card": CARD, "documents": [printed]})
    assert answer.json()["result"]["released"][0]["status"] == "printing"
    setup.wait_job(setup.jobs()[0].id)
    with installation.db.transaction() as session:
        for document_id in (old, printed):
            document = session.get(Document, document_id)
            assert document is not None
            document.created_at -= timedelta(hours=25)
        old_digest = session.get_one(Document, old).pdf_sha256
    old_files = [p for p in stored_files(installation) if old_digest in p.name]
    assert old_files
    for path in old_files:  # written a day ago, like its row
        aged = path.stat().st_mtime - 25 * 3600
        os.utime(path, (aged, aged))

    # Two machines sweeping at the same moment: each document is removed by one of them.
    results: list[int] = []
    start = threading.Barrier(2)

    def sweep_once() -> None:
        start.wait()
        results.append(sweep(installation))

    threads = [threading.Thread(target=sweep_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [0, 1]

    with installation.db.read() as session:
        stored = {
            d.id: d.store
            for d in session.scalars(select(Document).where(Document.doc_type == "in"))
        }
    assert stored == {old: False, printed: True, fresh: True}  # the log entry stays
    assert not any(old_digest in p.name for p in stored_files(installation))
    listed = terminal(server, {"printer": "capture", "card": CARD}).json()["result"]["documents"]
    assert [d["id"] for d in listed] == [fresh]
    late = terminal(server, {"printer": "capture", "card": CARD, "documents": [old]})
    assert late.json()["result"]["released"][0]["status"] == "refused"
    assert print_charges(setup) == 1  # the printed one only
    assert setup.balance() == Decimal("9.70")


def test_every_server_sweeps_expired_held_documents_in_the_background(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    document_id = hold(server, setup)
    with setup.installation.db.transaction() as session:
        session.get_one(Document, document_id).created_at -= timedelta(hours=25)
    # A server sweeps as it starts, then every few minutes.
    other = LiveServer(setup.installation).start()
    try:

        def removed() -> bool:
            with setup.installation.db.read() as session:
                return not session.get_one(Document, document_id).store

        wait_until(removed, timeout=10)
    finally:
        other.stop()
    assert print_charges(setup) == 0 and setup.balance() == Decimal("10.00")
