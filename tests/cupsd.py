"""A private cupsd for tests: its own ServerRoot, loopback port, Unix socket and ServerBin.

The recipe and its traps are in ``docs/cups-testing.md``. The instance never touches ``/etc/cups``
or port 631, needs neither systemd nor avahi, and works as root and as an ordinary user.

    cups = PrivateCups().start()
    cups.add_queue("cap", "capture")          # keeps job-<id>.prn and job-<id>.env
    cups.add_queue("broken", "fail", exit_code=1)
    cups.add_queue("sink", "null")            # file:///dev/null
    cups.add_queue("pdf", "file")             # file://<base>/out/pdf.out, created beforehand
    ...
    cups.close()                              # SIGTERM, then remove the directory

Queues are created with ``lpadmin`` rather than pycups on purpose: pycups keeps its server per
thread, and the helper should not leave the test process's libcups state pointing anywhere, so the
code under test has to set its own server.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Literal

GENERIC_PDF_PPD = "/usr/share/ppd/cupsfilters/Generic-PDF_Printer-PDF.ppd"
SYSTEM_SERVER_BIN = Path("/usr/lib/cups")
READY_TIMEOUT = 10.0

QueueKind = Literal["capture", "fail", "null", "file", "supplies"]

# The capture backend keeps the rendered output and the argv CUPS hands to a backend
# (job id, user, title, copies, options); the .env file is written last and renamed into place so
# a reader never sees half of it.
_CAPTURE_BACKEND = r"""#!/bin/sh
umask 022
if [ $# -eq 0 ]; then
  echo 'direct capture "Unknown" "printsrv test: capture to a directory"'; exit 0
fi
dir=${DEVICE_URI#capture:}
if [ -n "$6" ]; then cat "$6" > "$dir/job-$1.prn"; else cat > "$dir/job-$1.prn"; fi
printf 'JOBID=%s\nUSER=%s\nTITLE=%s\nCOPIES=%s\nOPTIONS=%s\n' "$1" "$2" "$3" "$4" "$5" \
  > "$dir/job-$1.env.tmp"
mv "$dir/job-$1.env.tmp" "$dir/job-$1.env"
exit 0
"""

# The fail backend reads its input (so the filters upstream never die of SIGPIPE and muddle the
# reason), reports an ERROR line that CUPS copies into job-printer-state-message, and exits with
# the code in its URI, fail:/<code> (1 = failed, 4 = stop printer, 5 = cancel job, ...).
_FAIL_BACKEND = r"""#!/bin/sh
if [ $# -eq 0 ]; then echo 'direct fail "Unknown" "printsrv test: always fails"'; exit 0; fi
code=${DEVICE_URI#fail:/}
if [ -n "$6" ]; then cat "$6" > /dev/null; else cat > /dev/null; fi
echo "ERROR: printsrv-test simulated device failure (exit $code)" >&2
echo "STATE: +media-jam-error" >&2
exit "$code"
"""

# The supplies backend prints nothing (it reads its input) and reports the device's supplies
# as a printer's backend does, in ATTR lines that cupsd keeps as the queue's marker-*
# attributes: black toner at 72 %, cyan ink at 8 %.
_SUPPLIES_BACKEND = r"""#!/bin/sh
if [ $# -eq 0 ]; then echo 'direct supplies "Unknown" "printsrv test: reports supplies"'; exit 0; fi
if [ -n "$6" ]; then cat "$6" > /dev/null; else cat > /dev/null; fi
echo "ATTR: marker-names=black,cyan marker-types=toner,ink-cartridge" >&2
echo "ATTR: marker-colors=#000000,#00FFFF marker-levels=72,8" >&2
exit 0
"""
SUPPLIES = {"black": 72, "cyan": 8}

# The ERROR text the fail backend writes; tests compare job messages against it.
FAIL_MESSAGE = "printsrv-test simulated device failure"

# The queues add_standard_queues() creates, one of each kind.
CAPTURE_QUEUE = "capture"
FAIL_QUEUE = "fail"
NULL_QUEUE = "null"


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_backend_options(text: str) -> dict[str, str]:
    """Split the OPTIONS line of a capture ``.env`` file (``a=b c=d flag``) into a dict.

    CUPS passes the job's options to a backend as one space-separated string; a bare name means
    a boolean ``true``. Values never contain spaces for the options the tests use.
    """
    options: dict[str, str] = {}
    for word in text.split():
        name, sep, value = word.partition("=")
        options[name] = value if sep else "true"
    return options


class CupsdStartError(RuntimeError):
    """The private cupsd did not come up; the message carries the tail of its error_log."""


class PrivateCups:
    """One private cupsd process and the directory tree it owns.

    Attributes after ``start()``: ``base`` (the ServerRoot, 0755 under /tmp), ``port`` (loopback
    TCP port), ``socket_path`` (the Unix socket), ``server`` (what a client should pass as its
    server: the socket path), ``out_dir`` (capture backends write under it).
    """

    def __init__(self, *, prefix: str = "printsrv-cupsd-") -> None:
        # Not pytest's tmp_path: that lives under a 0700 directory, and a root cupsd runs its
        # filters as user lp, which must be able to reach ServerBin and the spool (trap 2.3).
        self.base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        os.chmod(self.base, 0o755)  # noqa: S103 - lp must traverse it; see above
        self.port = free_port()
        self.socket_path = self.base / "cups.sock"
        self.out_dir = self.base / "out"
        self.server_bin = self.base / "sb"
        self._proc: subprocess.Popen[bytes] | None = None
        self._console: BinaryIO | None = None
        self._as_root = os.geteuid() == 0
        self._prepare()

    # -- set-up ---------------------------------------------------------------------------

    @property
    def server(self) -> str:
        """The server string for libcups: the Unix socket path."""
        return str(self.socket_path)

    @property
    def tcp_server(self) -> str:
        """The same server over TCP, as ``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    @property
    def console_log(self) -> Path:
        """What the cupsd process itself printed (its stdout and stderr)."""
        return self.base / "log" / "console"

    @property
    def error_log(self) -> Path:
        """The cupsd error_log of this instance."""
        return self.base / "log" / "error_log"

    def _mkdir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        # Explicit mode: a umask of 002 would make these group-writable, and a root cupsd refuses
        # a ServerBin with insecure permissions.
        os.chmod(path, 0o755)  # noqa: S103 - world-readable on purpose, never writable

    def _prepare(self) -> None:
        for sub in ("ppd", "spool", "spool/temp", "log", "cache", "ssl", "out"):
            self._mkdir(self.base / sub)
        self._build_server_bin()
        self._write_config()

    def _build_server_bin(self) -> None:
        backend_dir = self.server_bin / "backend"
        self._mkdir(self.server_bin)
        self._mkdir(backend_dir)
        for entry in SYSTEM_SERVER_BIN.iterdir():
            if entry.name != "backend":
                (self.server_bin / entry.name).symlink_to(entry)
        for entry in (SYSTEM_SERVER_BIN / "backend").iterdir():
            (backend_dir / entry.name).symlink_to(entry)
        # A root cupsd runs a 0700 backend as root (so it can write anywhere under out/) and
        # refuses any backend that is group/world-writable; an ordinary cupsd runs it as us.
        mode = 0o700 if self._as_root else 0o755
        for name, text in (
            ("capture", _CAPTURE_BACKEND),
            ("fail", _FAIL_BACKEND),
            ("supplies", _SUPPLIES_BACKEND),
        ):
            path = backend_dir / name
            path.write_text(text)
            os.chmod(path, mode)

    def _write_config(self) -> None:
        base = self.base
        (base / "cupsd.conf").write_text(
            "\n".join(
                [
                    "LogLevel info",
                    "MaxLogSize 0",
                    f"Listen 127.0.0.1:{self.port}",
                    f"Listen {self.socket_path}",
                    "Browsing Off",
                    "BrowseLocalProtocols none",
                    "DefaultAuthType None",
                    "WebInterface No",
                    "PreserveJobHistory Yes",
                    "PreserveJobFiles No",
                    "MaxJobs 0",
                    "JobRetryInterval 1",
                    # Explicit, not left to the build's default: deb12u10 crashed on an empty
                    # ErrorPolicy before its fix; retry-job is Debian's default.
                    "ErrorPolicy retry-job",
                    "<Location />",
                    "  Order allow,deny",
                    "  Allow all",
                    "</Location>",
                    "<Policy default>",
                    "  <Limit All>",
                    "    Order allow,deny",
                    "    Allow all",
                    "  </Limit>",
                    "</Policy>",
                    "",
                ]
            )
        )
        # Printcap needs a value since Debian's CUPS 2.4.2-3+deb12u10: a bare line is fatal there.
        # No PeerCred line (new in cups-files.conf with that update, unknown and so fatal before
        # it): nothing in this instance authenticates, every operation is allowed to everyone.
        lines = ["FileDevice Yes", f"Printcap {base}/printcap"]
        if self._as_root:
            # Only a root cupsd may switch users; an ordinary one refuses these lines.
            lines += ["User lp", "Group lp", "SystemGroup root"]
        lines += [
            f"ServerRoot {base}",
            f"StateDir {base}",
            f"CacheDir {base}/cache",
            f"RequestRoot {base}/spool",
            f"TempDir {base}/spool/temp",
            f"AccessLog {base}/log/access_log",
            f"ErrorLog {base}/log/error_log",
            f"PageLog {base}/log/page_log",
            f"ServerBin {self.server_bin}",
            "DataDir /usr/share/cups",
            "DocumentRoot /usr/share/cups/doc-root",
            "",
        ]
        (base / "cups-files.conf").write_text("\n".join(lines))

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the cupsd process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def check_config(self) -> str:
        """Run ``cupsd -t`` on the generated configuration and return what it printed.

        Raises ``CupsdStartError`` with cupsd's own words when it finds the configuration wrong
        (Debian's security updates have turned lines that used to pass, such as a bare
        ``Printcap``, into fatal errors; see ``docs/cups-testing.md``).
        """
        if shutil.which("cupsd") is None:
            raise CupsdStartError(
                "cupsd is not installed (Debian package cups-daemon); scripts/install --test "
                "installs it with the other packages in scripts/system-packages.txt"
            )
        result = subprocess.run(
            ["cupsd", "-t", *self._config_args()],
            capture_output=True,
            text=True,
            check=False,
        )
        words = (result.stdout + result.stderr).strip()
        if result.returncode != 0 or "is OK" not in words:
            raise CupsdStartError(
                f"cupsd -t refused the private configuration in {self.base} "
                f"(exit {result.returncode}):\n{words}"
            )
        return words

    def _config_args(self) -> list[str]:
        return ["-c", str(self.base / "cupsd.conf"), "-s", str(self.base / "cups-files.conf")]

    def start(self, timeout: float = READY_TIMEOUT) -> PrivateCups:
        """Check the configuration, start cupsd in the foreground, wait until it answers.

        Raises ``CupsdStartError`` when ``cupsd -t`` refuses the configuration, or when cupsd
        exits or stays silent for ``timeout`` seconds; the message then carries what cupsd printed
        and the tail of its error_log. Never a skip: a run without its printing tests is not green.
        """
        if self.running:
            return self
        self.check_config()
        self._console = open(self.console_log, "ab")  # noqa: SIM115 - kept while cupsd runs
        self._proc = subprocess.Popen(
            ["cupsd", "-f", *self._config_args()],
            stdin=subprocess.DEVNULL,
            stdout=self._console,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                returncode = self._proc.returncode
                self.stop()
                raise CupsdStartError(
                    f"cupsd exited with status {returncode}\n{self.diagnostics()}"
                )
            if self._answers():
                return self
            time.sleep(0.01)
        self.stop()
        raise CupsdStartError(f"cupsd not ready after {timeout} s\n{self.diagnostics()}")

    def diagnostics(self) -> str:
        """cupsd's own words on this instance: its console output and its error_log tail."""
        try:
            console = self.console_log.read_text(errors="replace").strip() or "(nothing)"
        except FileNotFoundError:
            console = "(nothing)"
        return f"cupsd printed:\n{console}\nerror_log:\n{self.error_log_tail()}"

    def _answers(self) -> bool:
        """Send one real IPP request (lpstat -r) to the Unix socket."""
        if not self.socket_path.exists():
            return False
        result = subprocess.run(
            ["lpstat", "-h", self.server, "-r"],
            capture_output=True,
            text=True,
            check=False,
        )
        return "is running" in result.stdout

    def stop(self) -> None:
        """Stop cupsd with SIGTERM (it exits within milliseconds); the directory stays."""
        proc, self._proc = self._proc, None
        console, self._console = self._console, None
        if console is not None:
            console.close()
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def close(self) -> None:
        """Stop cupsd and delete its directory tree."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PrivateCups:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def error_log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the error_log, for failure messages."""
        try:
            text = self.error_log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no error_log yet)"
        return "\n".join(text.splitlines()[-lines:])

    # -- queues ---------------------------------------------------------------------------

    def _lpadmin(self, *args: str) -> None:
        result = subprocess.run(
            ["lpadmin", "-h", self.server, *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"lpadmin {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
                f"\n{self.error_log_tail()}"
            )

    def file_output(self, queue: str) -> Path:
        """Where a ``file`` queue writes each job (every job overwrites the last one)."""
        return self.out_dir / f"{queue}.out"

    def prepare_output_file(self, path: Path) -> Path:
        """Create the output file of a ``file:`` device URI, writable by the scheduler's user.

        Since Debian's CUPS 2.4.2-3+deb12u10 the scheduler no longer creates it: a job to a
        missing file stops with "the scheduler could not open the output file".
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        os.chmod(path, 0o666)  # noqa: S103 - the scheduler's user (lp under a root cupsd) writes it
        if self._as_root:
            shutil.chown(path, user="lp", group="lp")
        return path

    def capture_dir(self, queue: str) -> Path:
        """The directory a capture queue writes its job files into."""
        return self.out_dir / queue

    def add_queue(
        self,
        name: str,
        kind: QueueKind,
        *,
        exit_code: int = 1,
        error_policy: str | None = None,
        ppd: str = GENERIC_PDF_PPD,
    ) -> str:
        """Create, enable and accept a queue; return its device URI.

        ``capture`` keeps each job under ``capture_dir(name)``; ``fail`` exits with
        ``exit_code`` after an ERROR line; ``null`` prints to ``file:///dev/null``;
        ``supplies`` prints nothing and reports marker levels (SUPPLIES) once a job ran; ``file``
        prints to ``file_output(name)``, created beforehand (``prepare_output_file``).
        ``error_policy`` sets ``printer-error-policy`` (the fail queue defaults to
        ``abort-job``; Debian's default, retry-job, would hold and retry the job for seconds).
        """
        if kind == "capture":
            target = self.capture_dir(name)
            self._mkdir(target)
            uri = f"capture:{target}"
        elif kind == "fail":
            uri = f"fail:/{exit_code}"
            error_policy = error_policy or "abort-job"
        elif kind == "null":
            uri = "file:///dev/null"
        elif kind == "supplies":
            uri = "supplies:/"
        elif kind == "file":
            uri = f"file://{self.prepare_output_file(self.file_output(name))}"
        else:
            raise ValueError(f"unknown queue kind {kind!r}")
        args = ["-p", name, "-E", "-v", uri, "-P", ppd]
        if error_policy:
            # Only lpadmin -o sets the policy; pycups' addPrinterOptionDefault would merely
            # store a job default of that name.
            args += ["-o", f"printer-error-policy={error_policy}"]
        self._lpadmin(*args)
        return uri

    def add_standard_queues(self) -> None:
        """Add ``CAPTURE_QUEUE``, ``FAIL_QUEUE`` (exit 1, abort-job) and ``NULL_QUEUE``."""
        self.add_queue(CAPTURE_QUEUE, "capture")
        self.add_queue(FAIL_QUEUE, "fail", exit_code=1)
        self.add_queue(NULL_QUEUE, "null")

    def remove_queue(self, name: str) -> None:
        """Delete a queue."""
        self._lpadmin("-x", name)

    def _queue_command(self, command: str, name: str) -> None:
        result = subprocess.run(
            [command, "-h", self.server, name], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{command} {name} failed: {result.stderr.strip()}")

    def set_accepting(self, name: str, accepting: bool) -> None:
        """Let a queue accept new jobs, or refuse them (``cupsaccept`` / ``cupsreject``)."""
        self._queue_command("cupsaccept" if accepting else "cupsreject", name)

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Start or stop a queue (``cupsenable`` / ``cupsdisable``); a stopped queue still
        accepts jobs and keeps them pending."""
        self._queue_command("cupsenable" if enabled else "cupsdisable", name)

    # -- job output -----------------------------------------------------------------------

    def output_path(self, queue: str, job_id: int) -> Path:
        """Where a capture queue keeps the rendered output of a job."""
        return self.capture_dir(queue) / f"job-{job_id}.prn"

    def env_path(self, queue: str, job_id: int) -> Path:
        """Where a capture queue keeps the argv of a job."""
        return self.capture_dir(queue) / f"job-{job_id}.env"

    def read_env(self, queue: str, job_id: int, timeout: float = 10.0) -> dict[str, str]:
        """Wait for and parse a job's ``.env`` file (JOBID, USER, TITLE, COPIES, OPTIONS)."""
        path = self.env_path(queue, job_id)
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} not written after {timeout} s\n{self.error_log_tail()}")
            time.sleep(0.01)
        env: dict[str, str] = {}
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
        return env

    def read_output_pdf(self, queue: str, job_id: int, timeout: float = 10.0) -> bytes:
        """The PDF a capture queue received, without the PJL header the Generic-PDF PPD adds.

        Stripping the header keeps pypdf from warning ``invalid pdf header``.
        """
        self.read_env(queue, job_id, timeout)  # the .prn is complete once .env exists
        data = self.output_path(queue, job_id).read_bytes()
        start = data.find(b"%PDF-")
        if start < 0:
            raise ValueError(f"job {job_id} output holds no PDF ({len(data)} bytes)")
        return data[start:]


@contextmanager
def private_cups(*queues: tuple[str, QueueKind]) -> Iterator[PrivateCups]:
    """Run a private cupsd with the given ``(name, kind)`` queues for the ``with`` block."""
    cups = PrivateCups().start()
    try:
        for name, kind in queues:
            cups.add_queue(name, kind)
        yield cups
    finally:
        cups.close()
