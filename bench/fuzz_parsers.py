"""Fuzz the parsers that take raw bytes for a set time; print executions and findings.

    python -m bench.fuzz_parsers --minutes 30                  # every target, time shared
    python -m bench.fuzz_parsers --minutes 10 --target pdf     # one target
    python -m bench.fuzz_parsers --seconds 5 --engine random   # the small mode tests run

The targets and their contracts are `bench/fuzz_targets.py`: each parser either returns a
valid result or raises its domain's error, the one its adapter renders in its envelope.
A finding is anything else: another exception (one per kind and place is kept), a hang
past `--timeout` seconds on one input, or memory past `--rss-mb`.

Engines: `atheris` (coverage-guided libFuzzer, PyPI `atheris`; each target in a process of
its own, restarted after a hang or an out-of-memory so the time is used in full), or
`random` (byte mutations of the seeds, no coverage; for machines without atheris). Each
finding's input and traceback are written under `--out` (default /tmp/printsrv-fuzz).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from bench.fuzz_targets import SEEDS, TARGETS

DEFAULT_OUT = Path("/tmp/printsrv-fuzz")

# Tokens libFuzzer (and the random engine) splice into inputs: the grammar's words.
# fmt: off
TOKENS: dict[str, list[bytes]] = {
    "xmlrpc": [b"<methodCall>", b"<methodName>", b"<params>", b"<param>", b"<value>",
               b"<int>", b"<i4>", b"<i8>", b"<boolean>", b"<double>", b"<string>", b"<nil/>",
               b"<base64>", b"<dateTime.iso8601>", b"<struct>", b"<member>", b"<name>",
               b"<array>", b"<data>", b"<fault>", b"<methodResponse>", b"<!DOCTYPE x>",
               b"<?xml version='1.0' encoding='utf-16'?>", b"&amp;", b"&#0;", b"]]>"],
    "jsonrpc": [b'"jsonrpc"', b'"2.0"', b'"method"', b'"params"', b'"id"', b"NaN", b"1e999",
                b"-0", b"[", b"]", b"{", b"}", b"null", b"true", b'"\\ud800"', b"1.5"],
    "multipart": [b"--fuzzboundary1234", b"\r\n", b"Content-Disposition: ", b"form-data",
                  b'name="file"', b"filename=", b'filename*=UTF-8\'\'%C3%A9', b"Content-Type: ",
                  b'name="queue"', b"\r\n\r\n", b"--\r\n"],
    "ipp": [b'"copies"', b'"page-ranges"', b'"sides"', b'"number-up"', b'"media"', b"-", b",",
            b"999999999", b"0", b'"fit-to-page"', b"{}", b"[]", b"1e5"],
    "pdf": [b"%PDF-1.7", b"obj", b"endobj", b"stream", b"endstream", b"xref", b"trailer",
            b"/Root", b"/Pages", b"/Kids", b"/Count", b"/MediaBox", b"/CropBox", b"/Rotate",
            b"/UserUnit", b"/Contents", b"/Resources", b"/XObject", b"/Filter", b"/FlateDecode",
            b"/Length", b"/Encrypt", b"/Annots", b"Do", b" rg", b" k", b"-1", b"1e308", b"R"],
    "report": [b'"select"', b'"date_from"', b'"ccyy"', b'"mm"', b'"dd"', b'"zzz"', b'"+18"',
               b"99999999999999999999", b"-1", b'"sort"', b'"media_type"', b'"PDF"'],
    "release": [b'"printer"', b'"card"', b'"user"', b'"pin"', b'"documents"', b'"all"',
                b"99999999999999999999", b"\\u0000"],
    "agents": [b'"printers"', b'"name"', b'"markers"', b'"level"', b'"copies_supported"',
               b'"defaults"', b'"claim"', b'"state"', b"\\u0000", b"99999999999999999999"],
}
# fmt: on

# The packages whose code coverage guides atheris.
INSTRUMENTED = [
    "printsrv.accounts.reports",
    "printsrv.agents.dispatch",
    "printsrv.agents.printers",
    "printsrv.documents.convert",
    "printsrv.documents.convert_to",
    "printsrv.platform.uploads",
    "printsrv.printing.options",
    "printsrv.printing.queues",
    "printsrv.release",
    "printsrv.rpc.jsonrpc",
    "printsrv.rpc.xmlrpc",
    "defusedxml",
    "pypdf",
    "python_multipart",
]


@dataclass
class Outcome:
    """What fuzzing one target gave."""

    target: str
    seconds: float
    executions: int
    findings: list[str]


# --- the child: one target in this process ------------------------------------------------


class _Hang(Exception):
    pass


class Recorder:
    """Keeps one finding per (exception type, place): its input and its traceback."""

    def __init__(self, target: str, out: Path) -> None:
        self.target = target
        self.out = out / "findings"
        self.out.mkdir(parents=True, exist_ok=True)
        self.seen: set[str] = set()

    def record(self, data: bytes, exc: BaseException) -> None:
        frames = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in frames if "/printsrv/" in f.filename] or frames
        place = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
        kind = f"{type(exc).__name__}@{place}"
        if kind in self.seen:
            return
        self.seen.add(kind)
        stem = f"{self.target}-{type(exc).__name__}-{hashlib.sha256(data).hexdigest()[:12]}"
        (self.out / f"{stem}.bin").write_bytes(data)
        text = "".join(traceback.format_exception(exc))
        (self.out / f"{stem}.txt").write_text(f"{kind}\ninput: {data[:300]!r}\n\n{text}")
        print(f"FINDING {self.target}: {kind}: {str(exc)[:160]!r}", file=sys.stderr, flush=True)


def _mutate(data: bytes, rng: random.Random, tokens: list[bytes], pool: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        choice = rng.randrange(7)
        at = rng.randrange(len(buf) + 1)
        if choice == 0 and buf:
            buf[min(at, len(buf) - 1)] = rng.randrange(256)
        elif choice == 1 and buf:
            del buf[at : at + rng.randint(1, 16)]
        elif choice == 2:
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif choice == 3 and tokens:
            buf[at:at] = rng.choice(tokens)
        elif choice == 4 and buf:
            start = rng.randrange(len(buf))
            piece = buf[start : start + rng.randint(1, 64)]
            buf[at:at] = piece * rng.randint(1, 50)  # repetition: nesting, long runs
        elif choice == 5:
            other = rng.choice(pool)
            cut = rng.randrange(len(other) + 1)
            buf = buf[:at] + bytearray(other[cut:])
        elif choice == 6 and buf:
            buf[at:at] = str(rng.choice([0, -1, 2**31, 2**63, 10**30, 7])).encode()
    return bytes(buf[: 1 << 20])


def run_random(name: str, seconds: float, out: Path, timeout: int, seed: int) -> int:
    """Mutate the seeds for `seconds`; returns the executions."""
    target = TARGETS[name]
    recorder = Recorder(name, out)
    rng = random.Random(seed)
    pool = list(SEEDS[name])
    tokens = TOKENS.get(name, [])

    def alarm(signum: int, frame: object) -> None:
        raise _Hang(f"one input took more than {timeout} s")

    signal.signal(signal.SIGALRM, alarm)
    for seed in pool:
        target.run(seed)  # imports what the target reaches before the clock starts
    executions = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data = _mutate(rng.choice(pool), rng, tokens, pool)
        signal.alarm(timeout)
        try:
            target.run(data)
        except Exception as exc:
            recorder.record(data, exc)
        finally:
            signal.alarm(0)
        executions += 1
        if rng.random() < 0.01 and len(pool) < 200:
            pool.append(data)  # keep some mutants as new starting points
    return executions


def run_atheris(name: str, seconds: float, out: Path, timeout: int, rss_mb: int) -> None:
    """libFuzzer on one target until `seconds` pass (it exits the process itself)."""
    import atheris

    target = TARGETS[name]
    recorder = Recorder(name, out)
    corpus = out / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    # Running the seeds imports what the target reaches, instrumented for coverage (only the
    # parsers' own packages: instrumenting everything loaded takes minutes).
    with atheris.instrument_imports(include=INSTRUMENTED):
        for seed in SEEDS[name]:
            (corpus / hashlib.sha256(seed).hexdigest()).write_bytes(seed)
            target.run(seed)
    dictionary = out / f"{name}.dict"
    dictionary.write_text("".join(f'"{_escaped(t)}"\n' for t in TOKENS.get(name, [])))

    def one(data: bytes) -> None:
        try:
            target.run(data)
        except Exception as exc:
            recorder.record(data, exc)

    artifacts = out / "findings" / f"{name}-"
    args = [
        sys.argv[0],
        str(corpus),
        f"-max_total_time={max(1, int(seconds))}",
        f"-timeout={timeout}",
        f"-rss_limit_mb={rss_mb}",
        f"-artifact_prefix={artifacts}",
        "-print_final_stats=1",
        "-max_len=65536",
    ]
    if TOKENS.get(name):
        args.append(f"-dict={dictionary}")
    atheris.Setup(args, one)
    atheris.Fuzz()


# --- the parent: targets in turn, each in a child process ----------------------------------

_DONE = re.compile(r"Done (\d+) runs in")
_STAT_RUNS = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_RANDOM_RUNS = re.compile(r"^EXECUTIONS (\d+)$", re.M)
_FINDING = re.compile(r"^FINDING (.*)$", re.M)
_LIBFUZZER_STOP = re.compile(r"ERROR: libFuzzer: (timeout|out-of-memory|deadly signal)[^\n]*")


def fuzz_target(
    name: str, seconds: float, *, engine: str, out: Path, timeout: int, rss_mb: int
) -> Outcome:
    """Fuzz one target for `seconds` in child processes (restarted after a hang or OOM)."""
    started = time.monotonic()
    executions = 0
    findings: list[str] = []
    runs = 0
    while (left := seconds - (time.monotonic() - started)) >= 1:
        command = [
            sys.executable,
            "-m",
            "bench.fuzz_parsers",
            "--child",
            name,
            "--seconds",
            f"{left:.0f}",
            "--engine",
            engine,
            "--out",
            str(out),
            "--timeout",
            str(timeout),
            "--rss-mb",
            str(rss_mb),
            "--seed",
            str(runs),
        ]
        runs += 1
        try:
            # Start-up (imports, instrumenting) comes on top of the fuzzing time; on a busy
            # machine it takes minutes.
            result = subprocess.run(
                command, capture_output=True, text=True, errors="replace", timeout=left + 600
            )
        except subprocess.TimeoutExpired as stopped:
            findings.append(f"{name}: the fuzzer process stopped answering (a hang)")
            partial = stopped.stderr or b""
            text = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
            findings += _FINDING.findall(text)
            continue
        text = result.stdout + result.stderr
        counted = _STAT_RUNS.findall(text) or _DONE.findall(text) or _RANDOM_RUNS.findall(text)
        executions += int(counted[-1]) if counted else 0
        findings += _FINDING.findall(text)
        stop = _LIBFUZZER_STOP.search(text)
        if stop:
            findings.append(f"{name}: {stop.group(0)}")
        elif result.returncode != 0 and not counted:
            findings.append(f"{name}: the fuzzer exited {result.returncode}: {text[-400:]!r}")
            break
    return Outcome(name, time.monotonic() - started, executions, findings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, help="total time, shared by the targets")
    parser.add_argument("--seconds", type=float, help="total time in seconds instead")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS))
    parser.add_argument("--engine", choices=("atheris", "random"), default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--timeout", type=int, default=20, help="seconds one input may take")
    parser.add_argument("--rss-mb", type=int, default=3072, help="memory the fuzzer may use")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    engine = args.engine or ("atheris" if _has_atheris() else "random")
    total = args.seconds if args.seconds is not None else (args.minutes or 1) * 60
    if args.child:
        if engine == "atheris":
            run_atheris(args.child, total, args.out, args.timeout, args.rss_mb)
        print(f"EXECUTIONS {run_random(args.child, total, args.out, args.timeout, args.seed)}")
        return 0
    names = args.target or sorted(TARGETS)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"fuzzing {len(names)} target(s) for {total:.0f} s with {engine}; findings: {args.out}")
    outcomes = []
    for name in names:
        outcome = fuzz_target(
            name,
            total / len(names),
            engine=engine,
            out=args.out,
            timeout=args.timeout,
            rss_mb=args.rss_mb,
        )
        outcomes.append(outcome)
        print(
            f"  {name:<11} {outcome.seconds:7.0f} s {outcome.executions:>11,} executions "
            f"{len(outcome.findings):>3} finding(s)  {TARGETS[name].about}",
            flush=True,
        )
        for finding in outcome.findings:
            print(f"      {finding}")
    executions = sum(o.executions for o in outcomes)
    found = sum(len(o.findings) for o in outcomes)
    seconds = sum(o.seconds for o in outcomes)
    print(
        f"total: {len(outcomes)} target(s), {seconds / 60:.1f} min, {executions:,} executions, "
        f"{found} finding(s)"
    )
    return 1 if found else 0


def _escaped(token: bytes) -> str:
    return "".join(f"\\x{b:02x}" for b in token)


def _has_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
