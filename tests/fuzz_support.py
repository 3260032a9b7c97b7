"""Hypothesis settings and strategies for the fuzz tests (tests/unit/fuzz, tests/e2e).

Two profiles: `fuzz-ci` (the default: a bounded number of examples per target, so the
suite stays within its time) and `fuzz-long` (PRINTSRV_FUZZ_PROFILE=fuzz-long: thousands per
target, for a run by hand); PRINTSRV_FUZZ_EXAMPLES=N sets every target's count to N.
bench/fuzz_parsers.py is the coverage-guided, timed run.

`mutated(seeds, tokens)` starts from valid inputs and mutates their bytes: overwrite, cut,
insert random bytes or grammar tokens, repeat a slice (deep nesting, long runs), splice
two seeds, insert extreme numbers. Hypothesis shrinks a failure to a small mutation.
"""

from __future__ import annotations

import io
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, NameObject, NumberObject

from bench.fuzz_parsers import TOKENS
from bench.fuzz_targets import SEEDS

settings.register_profile(
    "fuzz-ci",
    max_examples=100,
    deadline=None,  # parsers do I/O (temp files, sockets): time is the suite's, not per example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=False,
)
settings.register_profile(
    "fuzz-long",
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PROFILE = os.environ.get("PRINTSRV_FUZZ_PROFILE", "fuzz-ci")


EXAMPLES = os.environ.get("PRINTSRV_FUZZ_EXAMPLES", "")


def fuzz_settings(examples: int | None = None) -> settings:
    """The fuzz profile, with `examples` in place of its count in CI (long runs keep theirs);
    PRINTSRV_FUZZ_EXAMPLES=N sets every target's count to N for a run by hand."""
    base = settings.get_profile(PROFILE)
    if EXAMPLES.isdigit():
        return settings(base, max_examples=int(EXAMPLES))
    if examples is None or PROFILE != "fuzz-ci":
        return settings(base)
    return settings(base, max_examples=examples)


EXTREME_NUMBERS = [b"0", b"-1", b"2147483648", b"9223372036854775808", b"1" * 30, b"1e999"]


@st.composite
def mutated(draw: st.DrawFn, target: str) -> bytes:
    """A seed of `target` (bench/fuzz_targets.py SEEDS) with a few byte-level mutations."""
    seeds = SEEDS[target]
    tokens = TOKENS.get(target, []) + EXTREME_NUMBERS
    buf = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(buf)))
        op = draw(st.integers(0, 5))
        if op == 0 and buf:
            buf[min(at, len(buf) - 1)] = draw(st.integers(0, 255))
        elif op == 1:
            del buf[at : at + draw(st.integers(1, 32))]
        elif op == 2:
            buf[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == 3:
            buf[at:at] = draw(st.sampled_from(tokens))
        elif op == 4 and buf:
            end = draw(st.integers(at, min(len(buf), at + 32)))
            buf[at:at] = bytes(buf[at:end]) * draw(st.integers(1, 300))
        elif op == 5:
            other = draw(st.sampled_from(seeds))
            buf = buf[:at] + bytearray(other[draw(st.integers(0, len(other))) :])
    return bytes(buf)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def pdf_page_with(key: str, value: object) -> bytes:
    """A one-page PDF whose page has `key` set to `value` (a broken box, a bad rotation)."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=200, height=300)
    page[NameObject(key)] = value
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# Findings of the fuzzing: pages that pass inspect_pdf (it reads the media box) and broke
# convert-to's picture sizing.
ZERO_CROP_BOX = pdf_page_with("/CropBox", ArrayObject([NumberObject(0)] * 4))
NAMED_ROTATION = pdf_page_with("/Rotate", NameObject("/x"))
NAMED_CROP_BOX = pdf_page_with("/CropBox", NameObject("/x"))
