"""``printsrv rule test``: what the print rules would do with a file, without printing it.

The file goes through the same steps a print does (conversion, colour detection, the
printer's option checks and prices, ``intake.rule_print``), so the answer is the one a real
print would get; nothing is logged, stored, charged or sent.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from printsrv.documents.convert import ConversionFailed, convert_sync
from printsrv.documents.convert.colour import detect_colours_sync
from printsrv.errors import InvalidInput
from printsrv.operations.installation import Installation
from printsrv.people.users import get_user
from printsrv.printing.context import PrintContext
from printsrv.printing.intake import print_target, rule_print
from printsrv.printing.queues import RESERVED_QUEUE, get_queue
from printsrv.printing.rules import Rule

__all__ = ["RuleTrial", "try_rules"]


@dataclass(frozen=True)
class RuleTrial:
    """What the rules would do with a document.

    Attributes:
        decision: ``refuse``, ``hold`` or ``print``.
        matched: the rules it meets, strongest first.
        pages: its page count after conversion.
        source_type: the MIME type found by sniffing.
        options: the options it would print with (the rules' changes made).
        cost: the price it would be charged (on approval, for a hold).
    """

    decision: str
    matched: tuple[Rule, ...]
    pages: int
    source_type: str
    options: dict[str, str]
    cost: Decimal


def try_rules(
    installation: Installation,
    *,
    user_name: str,
    printer: str,
    file: Path,
    queue: str = RESERVED_QUEUE,
) -> RuleTrial:
    """Judge ``file`` as printed by ``user_name`` on ``printer`` through ``queue``; blocking.

    Raises NotFound (user, printer, queue), PrintingDenied (the user may not print there),
    InvalidInput (not a readable file), ConversionFailed, OptionRejected.
    """
    if not file.is_file():
        raise InvalidInput(f"File '{file}' does not exist or is not a file", reason="file")
    context = PrintContext.of(installation)
    with installation.db.read() as session:
        user = get_user(session, user_name)
        target = print_target(session, printer, user)
        queue_name = get_queue(session, queue).name
    work_dir = context.store.work_dir()
    try:
        converted = convert_sync(file, work_dir, name=file.name, limits=context.limits)
        try:
            colours = detect_colours_sync(
                converted.pdf, pages=converted.pages, name=file.name, limits=context.limits
            )
        except ConversionFailed:
            colours = None  # priced as colour, as a real print would be
        ruling = rule_print(
            context,
            user=user,
            target=target,
            queue=queue_name,
            layers=({}, {}),
            pages=converted.pages,
            colours=colours,
            source_type=converted.source_type,
        )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    judgement = ruling.judgement
    return RuleTrial(
        decision=judgement.decision,
        matched=judgement.matched,
        pages=converted.pages,
        source_type=converted.source_type,
        options=ruling.plan.options,
        cost=ruling.plan.cost,
    )
