"""Value types for printers and jobs, and their construction from IPP attribute dicts.

Kept apart from ``cupsclient`` so that option validation and pricing import no pycups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "FINAL_JOB_STATES",
    "JobStatus",
    "PrinterInfo",
    "job_status_from_attributes",
    "printer_info_from_attributes",
]

# IPP enums (RFC 8011 5.4.11, 5.3.7) to the names the rest of printsrv stores.
PRINTER_STATES: Final[Mapping[int, str]] = {3: "idle", 4: "processing", 5: "stopped"}
JOB_STATES: Final[Mapping[int, str]] = {
    3: "pending",
    4: "held",
    5: "processing",
    6: "stopped",
    7: "canceled",
    8: "aborted",
    9: "completed",
}
FINAL_JOB_STATES: Final[frozenset[str]] = frozenset({"canceled", "aborted", "completed"})

# CUPS leaves sheet-collate-supported out although it honours sheet-collate; both values work.
DEFAULT_COLLATE: Final[tuple[str, ...]] = ("collated", "uncollated")
# RFC 8011 enums: portrait, landscape, reverse-landscape, reverse-portrait; draft, normal, high.
DEFAULT_ORIENTATIONS: Final[tuple[int, ...]] = (3, 4, 5, 6)
DEFAULT_QUALITIES: Final[tuple[int, ...]] = (3, 4, 5)

# The *-default attributes that become option defaults, and the option name each one sets.
_DEFAULT_ATTRIBUTES: Final[tuple[str, ...]] = (
    "copies",
    "sides",
    "print-color-mode",
    "media",
    "number-up",
    "orientation-requested",
    "print-quality",
)


@dataclass(frozen=True)
class PrinterInfo:
    """A CUPS printer (queue) and the IPP capabilities printsrv validates options against.

    Attributes:
        name: the CUPS queue name.
        state: ``idle``, ``processing`` or ``stopped`` (``unknown`` for an unexpected enum).
        state_message: ``printer-state-message``; after a device error it keeps the last ERROR
            text until the next message replaces it.
        state_reasons: ``printer-state-reasons`` without the placeholder ``none``.
        accepting: ``printer-is-accepting-jobs``; a printer can be stopped yet accepting.
        info, location, make_and_model: descriptive strings, possibly empty.
        copies_supported: the inclusive (min, max) range of ``copies``.
        sides_supported, print_color_mode_supported, media_supported: keywords.
        sheet_collate_supported: keywords; ``("collated", "uncollated")`` when CUPS omits it.
        number_up_supported: allowed ``number-up`` values.
        page_ranges_supported: whether ``page-ranges`` is honoured.
        orientation_requested_supported, print_quality_supported: IPP enum values.
        print_scaling_supported: keywords (may be empty).
        defaults: ``(option, value)`` pairs from the printer's ``*-default`` attributes.
    """

    name: str
    state: str
    state_message: str
    state_reasons: tuple[str, ...]
    accepting: bool
    info: str
    location: str
    make_and_model: str
    copies_supported: tuple[int, int]
    sides_supported: tuple[str, ...]
    print_color_mode_supported: tuple[str, ...]
    media_supported: tuple[str, ...]
    sheet_collate_supported: tuple[str, ...]
    number_up_supported: tuple[int, ...]
    page_ranges_supported: bool
    orientation_requested_supported: tuple[int, ...]
    print_quality_supported: tuple[int, ...]
    print_scaling_supported: tuple[str, ...]
    defaults: tuple[tuple[str, str], ...]

    def default_options(self) -> dict[str, str]:
        """The printer's defaults as an option dict, the lowest layer of ``merge_options``."""
        return dict(self.defaults)


@dataclass(frozen=True)
class JobStatus:
    """What CUPS says about one job.

    Attributes:
        job_id: the CUPS job id.
        state: pending, held, processing, stopped, canceled, aborted or completed.
        final: True for canceled, aborted and completed; CUPS never moves such a job again.
        message: ``job-printer-state-message`` (the backend's ERROR text for a failed job). It is
            the printer's message when the job finished, so a completed job on a printer that
            failed earlier can still carry that old text: decide on ``state``, show ``message``.
        impressions: ``job-impressions-completed`` as counted by the filters (an aborted job
            still reports them); never use it for charging.
        sheets: ``job-media-sheets-completed``, same caveat.
        printer: the queue name, from ``job-printer-uri`` (empty if CUPS did not say).

    The job's user is left out on purpose: CUPS' default ``JobPrivateValues`` hide
    ``job-originating-user-name`` from anyone but the owner, so it would read as empty; keep the
    user printsrv submitted as in printsrv's own records.
    """

    job_id: int
    state: str
    final: bool
    message: str
    impressions: int
    sheets: int
    printer: str


def _values(raw: object) -> tuple[object, ...]:
    """pycups gives a scalar for one value and a list for several; always get a tuple."""
    if raw is None:
        return ()
    if isinstance(raw, list | tuple):
        return tuple(raw)
    return (raw,)


def _keywords(attrs: Mapping[str, object], name: str) -> tuple[str, ...]:
    return tuple(str(v) for v in _values(attrs.get(name)))


def _integers(attrs: Mapping[str, object], name: str) -> tuple[int, ...]:
    # bool is an int subclass; a boolean here would be a different attribute type, not a count.
    return tuple(
        v for v in _values(attrs.get(name)) if isinstance(v, int) and not isinstance(v, bool)
    )


def _range(attrs: Mapping[str, object], name: str, fallback: tuple[int, int]) -> tuple[int, int]:
    raw = attrs.get(name)
    if isinstance(raw, tuple) and len(raw) == 2 and all(isinstance(v, int) for v in raw):
        return (int(raw[0]), int(raw[1]))
    if isinstance(raw, int) and not isinstance(raw, bool):
        return (raw, raw)
    return fallback


def _text(attrs: Mapping[str, object], name: str) -> str:
    raw = attrs.get(name)
    return "" if raw is None else str(raw)


def printer_info_from_attributes(name: str, attrs: Mapping[str, object]) -> PrinterInfo:
    """Build a ``PrinterInfo`` from a pycups ``getPrinterAttributes`` dict.

    Missing attributes get conservative values: no keywords, copies 1-1, no page ranges; only
    ``sheet-collate-supported``, orientations and qualities fall back to what CUPS accepts
    without advertising it.
    """
    defaults: list[tuple[str, str]] = []
    for option in _DEFAULT_ATTRIBUTES:
        value = attrs.get(f"{option}-default")
        # CUPS sends 'no-value' (None in pycups) for orientation-requested-default, and pycups
        # renders collections as '(unknown IPP value tag ...)': neither is an option value.
        if value is None or isinstance(value, list | tuple) or str(value).startswith("("):
            continue
        defaults.append((option, str(value)))
    reasons = tuple(r for r in _keywords(attrs, "printer-state-reasons") if r != "none")
    state = attrs.get("printer-state")
    return PrinterInfo(
        name=name,
        state=PRINTER_STATES.get(state, "unknown") if isinstance(state, int) else "unknown",
        state_message=_text(attrs, "printer-state-message"),
        state_reasons=reasons,
        accepting=bool(attrs.get("printer-is-accepting-jobs", False)),
        info=_text(attrs, "printer-info"),
        location=_text(attrs, "printer-location"),
        make_and_model=_text(attrs, "printer-make-and-model"),
        copies_supported=_range(attrs, "copies-supported", (1, 1)),
        sides_supported=_keywords(attrs, "sides-supported"),
        print_color_mode_supported=_keywords(attrs, "print-color-mode-supported"),
        media_supported=_keywords(attrs, "media-supported"),
        sheet_collate_supported=_keywords(attrs, "sheet-collate-supported") or DEFAULT_COLLATE,
        number_up_supported=_integers(attrs, "number-up-supported") or (1,),
        page_ranges_supported=bool(attrs.get("page-ranges-supported", False)),
        orientation_requested_supported=(
            _integers(attrs, "orientation-requested-supported") or DEFAULT_ORIENTATIONS
        ),
        print_quality_supported=_integers(attrs, "print-quality-supported") or DEFAULT_QUALITIES,
        print_scaling_supported=_keywords(attrs, "print-scaling-supported"),
        defaults=tuple(defaults),
    )


def _int_attr(attrs: Mapping[str, object], name: str) -> int:
    raw = attrs.get(name)
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else 0


def job_status_from_attributes(job_id: int, attrs: Mapping[str, object]) -> JobStatus:
    """Build a ``JobStatus`` from a pycups ``getJobAttributes`` dict."""
    raw_state = attrs.get("job-state")
    state = JOB_STATES.get(raw_state, "unknown") if isinstance(raw_state, int) else "unknown"
    printer_uri = _text(attrs, "job-printer-uri")
    return JobStatus(
        job_id=job_id,
        state=state,
        final=state in FINAL_JOB_STATES,
        message=_text(attrs, "job-printer-state-message"),
        impressions=_int_attr(attrs, "job-impressions-completed"),
        sheets=_int_attr(attrs, "job-media-sheets-completed"),
        printer=printer_uri.rsplit("/", 1)[-1] if printer_uri else "",
    )
