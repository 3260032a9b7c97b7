"""The private cupsd fixture itself (tests/cupsd.py): it starts on today's Debian CUPS, or fails
loudly with cupsd's own words; it never lets the printing tests skip."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
from cupsd import CupsdStartError, PrivateCups


@pytest.fixture
def unstarted() -> PrivateCups:
    cups = PrivateCups(prefix="printsrv-fixture-")
    yield cups
    cups.close()


def test_generated_configuration_passes_cupsd_t(unstarted: PrivateCups) -> None:
    words = unstarted.check_config()

    assert f'"{unstarted.base}/cups-files.conf" is OK' in words
    assert f'"{unstarted.base}/cupsd.conf" is OK' in words


def test_printcap_is_a_path_inside_the_private_server_root(unstarted: PrivateCups) -> None:
    # A bare "Printcap" line is fatal since Debian's cups 2.4.2-3+deb12u10.
    lines = (unstarted.base / "cups-files.conf").read_text().splitlines()

    assert f"Printcap {unstarted.base}/printcap" in lines


def test_error_policy_is_never_left_empty(unstarted: PrivateCups) -> None:
    lines = (unstarted.base / "cupsd.conf").read_text().splitlines()

    assert "ErrorPolicy retry-job" in lines


def test_a_refused_configuration_fails_with_cupsd_own_words(unstarted: PrivateCups) -> None:
    files_conf = unstarted.base / "cups-files.conf"
    files_conf.write_text(files_conf.read_text() + "NoSuchDirective yes\n")

    with pytest.raises(CupsdStartError) as refused:
        unstarted.start()

    message = str(refused.value)
    assert "cupsd -t refused the private configuration" in message
    assert "NoSuchDirective" in message  # cupsd's words, not ours
    assert not unstarted.running


def test_a_cupsd_that_cannot_listen_reports_its_console_and_error_log(
    unstarted: PrivateCups,
) -> None:
    # Passes cupsd -t, then cannot listen anywhere: the port is taken by a live listener and the
    # socket's directory does not exist.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        conf = unstarted.base / "cupsd.conf"
        conf.write_text(
            conf.read_text()
            .replace(
                f"Listen 127.0.0.1:{unstarted.port}", f"Listen 127.0.0.1:{taken.getsockname()[1]}"
            )
            .replace(f"Listen {unstarted.socket_path}", f"Listen {unstarted.base}/no/cups.sock")
        )
        with pytest.raises(CupsdStartError) as failed:
            unstarted.start(timeout=2)

    message = str(failed.value)
    assert "cupsd printed:" in message and "error_log:" in message
    assert "Address already in use" in message
    assert not unstarted.running


def test_a_file_queue_prints_into_its_output_file_created_beforehand(
    cupsd: PrivateCups, tmp_path: Path
) -> None:
    uri = cupsd.add_queue("fixture-file", "file")
    output = cupsd.file_output("fixture-file")
    assert uri == f"file://{output}"
    assert output.exists() and output.stat().st_mode & 0o666 == 0o666

    pdf = Path("/usr/share/cups/data/testprint")
    submitted = subprocess.run(
        ["lp", "-h", cupsd.server, "-d", "fixture-file", str(pdf)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "request id is fixture-file-" in submitted.stdout

    deadline = time.monotonic() + 15
    while b"%PDF-" not in output.read_bytes():
        assert time.monotonic() < deadline, cupsd.diagnostics()
        time.sleep(0.05)
    cupsd.remove_queue("fixture-file")
