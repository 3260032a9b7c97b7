"""Print rules: what a print must meet before it is charged and sent, and what happens if not.

A rule has a name, a scope (``all``, ``printer:P``, ``queue:Q``, ``group:G``), a condition
(``pages>N``, ``copies>N``, ``sheets>N``, ``color``, ``type:MIME``) and an action
(``refuse``, ``hold``, ``grayscale``, ``duplex``). ``printing.intake`` judges every print it
accepts (an upload to a routed queue, a release from the inbox, whichever door asked) after
conversion, when the page count, colours and options are known, and before charging.

When several rules match, refuse beats hold beats changes, and changes combine
(``judge``). A change is made only where the printer can do it: ``grayscale`` sets
``print-color-mode=monochrome``, ``duplex`` sets ``sides=two-sided-long-edge``, and the price
is computed from the changed options.

Service functions (``add_rule``, ``list_rules``, ``remove_rule``) own their transaction;
``rules_in_force`` and ``facts_of`` take the caller's session.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from printsrv.documents.convert import PageColours
from printsrv.errors import Conflict, InvalidInput, NotAllowed, NotFound
from printsrv.people.models import User, UserGroup, UserGroupMember
from printsrv.people.users import get_group
from printsrv.platform.database import Database
from printsrv.printing.costs import count_sheets
from printsrv.printing.models import RULE_ACTIONS, PrintRule
from printsrv.printing.options import is_grayscale
from printsrv.printing.printers import get_printer
from printsrv.printing.queues import get_queue
from printsrv.printing.types import PrinterInfo

__all__ = [
    "Judgement",
    "PrintFacts",
    "PrintRefused",
    "Rule",
    "RuleNotFound",
    "add_rule",
    "apply_changes",
    "facts_of",
    "judge",
    "list_rules",
    "parse_condition",
    "parse_scope",
    "remove_rule",
    "rules_in_force",
]

MAX_NAME: Final = 100
MAX_MESSAGE: Final = 500
MAX_THRESHOLD: Final = 1_000_000
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_COUNTED: Final = re.compile(r"(pages|copies|sheets)\s*>\s*(\S+)")
_MIME: Final = re.compile(r"[a-z0-9][a-z0-9.+-]*/(\*|[a-z0-9][a-z0-9.+-]*)")
CONDITION_FORMS: Final = "pages>N, copies>N, sheets>N, color or type:MIME"
SCOPE_FORMS: Final = "all, printer:NAME, queue:NAME or group:NAME"
# Refuse beats hold beats changes; this is also the order rules are listed in.
_STRENGTH: Final = {"refuse": 0, "hold": 1, "grayscale": 2, "duplex": 2}


class RuleNotFound(NotFound):
    """No rule has the name given (404)."""


class PrintRefused(NotAllowed):
    """A print rule refuses the print; answered 422 with the rule's message.

    ``rule`` is the refusing rule's name; nothing was charged, and the document is logged as
    refused by it.
    """

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message or f"Print refused by rule '{rule}'", reason=rule)
        self.rule = rule


@dataclass(frozen=True)
class Rule:
    """One rule as stored and shown.

    Attributes:
        name: unique name.
        scope: ``all``, ``printer:P``, ``queue:Q`` or ``group:G``.
        condition: ``pages>N``, ``copies>N``, ``sheets>N``, ``color`` or ``type:MIME``.
        action: refuse, hold, grayscale or duplex.
        message: what a refused or held user is told ("" for the default).
    """

    name: str
    scope: str
    condition: str
    action: str
    message: str = ""

    @classmethod
    def of(cls, row: PrintRule) -> Rule:
        """The rule a stored row holds."""
        scope = row.scope_kind if row.scope_kind == "all" else f"{row.scope_kind}:{row.scope_name}"
        if row.condition_kind in ("pages", "copies", "sheets"):
            condition = f"{row.condition_kind}>{row.condition_value}"
        elif row.condition_kind == "type":
            condition = f"type:{row.condition_value}"
        else:
            condition = row.condition_kind
        return cls(row.name, scope, condition, row.action, row.message)

    @property
    def told(self) -> str:
        """What the user is told when this rule refuses or holds their print."""
        if self.message:
            return self.message
        if self.action == "refuse":
            return f"Print refused by rule '{self.name}' ({self.condition})"
        return f"Waiting for approval: rule '{self.name}' ({self.condition})"


@dataclass(frozen=True)
class PrintFacts:
    """What the rules look at, for one print.

    Attributes:
        printer, queue: where it goes and the queue the document came through.
        groups: the user's groups.
        pages: the document's pages; copies, sheets: as the merged options print it.
        color: whether it would print in colour (a colour mode, and a page with colour
            unless detection found none).
        source_type: the MIME type of what was uploaded, before conversion.
    """

    printer: str
    queue: str
    groups: frozenset[str]
    pages: int
    copies: int
    sheets: int
    color: bool
    source_type: str


@dataclass(frozen=True)
class Judgement:
    """What the rules decided for one print.

    Attributes:
        matched: every rule the print meets, strongest first.
        refused_by: the first refusing rule, or None.
        held_by: the holding rules (they matter only when nothing refuses).
        changes: the changes to make (grayscale, duplex), each once.
    """

    matched: tuple[Rule, ...]

    @property
    def refused_by(self) -> Rule | None:
        """The rule that refuses the print, if any."""
        return next((r for r in self.matched if r.action == "refuse"), None)

    @property
    def held_by(self) -> tuple[Rule, ...]:
        """The rules that hold the print for approval."""
        return tuple(r for r in self.matched if r.action == "hold")

    @property
    def changes(self) -> tuple[str, ...]:
        """The changes the matched rules ask for, each once, in a fixed order."""
        asked = {r.action for r in self.matched}
        return tuple(a for a in ("grayscale", "duplex") if a in asked)

    @property
    def decision(self) -> str:
        """``refuse``, ``hold`` or ``print``."""
        if self.refused_by is not None:
            return "refuse"
        return "hold" if self.held_by else "print"


# --- parsing ----------------------------------------------------------------------------------


def _check_name(name: str) -> str:
    text = (name or "").strip()
    if not text or len(text) > MAX_NAME or not _NAME.fullmatch(text):
        raise InvalidInput(
            f"Rule name {text[:40]!r} must be 1-{MAX_NAME} letters, digits, '.', '_' or '-'",
            reason="name",
        )
    return text


def parse_scope(session: Session, scope: str) -> tuple[str, str]:
    """``(kind, name)`` of a scope, the printer, queue or group checked to exist.

    Raises InvalidInput (reason ``scope``) for a malformed scope, NotFound for an unknown
    printer, queue or group.
    """
    text = (scope or "").strip()
    if text == "all":
        return "all", ""
    kind, _, name = text.partition(":")
    name = name.strip()
    if kind not in ("printer", "queue", "group") or not name:
        raise InvalidInput(f"Scope {text[:60]!r} is not one of {SCOPE_FORMS}", reason="scope")
    if kind == "printer":
        get_printer(session, name)
    elif kind == "queue":
        name = get_queue(session, name).name
    else:
        name = get_group(session, name).name
    return kind, name


def parse_condition(condition: str) -> tuple[str, str]:
    """``(kind, value)`` of a condition; InvalidInput (reason ``if``) when it is not one of
    ``pages>N``, ``copies>N``, ``sheets>N``, ``color`` or ``type:MIME``."""
    text = (condition or "").strip()
    if text in ("color", "colour"):
        return "color", ""
    counted = _COUNTED.fullmatch(text)
    if counted is not None:
        kind, number = counted.groups()
        if (
            not (number.isascii() and number.isdigit())  # isdigit() alone takes "²"
            or int(number[:9]) >= MAX_THRESHOLD
            or len(number) > 9
        ):
            raise InvalidInput(
                f"Condition {text[:60]!r}: N must be a whole number from 0 to {MAX_THRESHOLD - 1}",
                reason="if",
            )
        return kind, str(int(number))
    if text.startswith("type:"):
        mime = text[5:].strip().lower()
        if not _MIME.fullmatch(mime):
            raise InvalidInput(
                f"Condition {text[:60]!r}: {mime[:60]!r} is not a MIME type such as "
                "application/pdf or image/*",
                reason="if",
            )
        return "type", mime
    raise InvalidInput(f"Condition {text[:60]!r} is not one of {CONDITION_FORMS}", reason="if")


def _check_action(action: str) -> str:
    text = (action or "").strip()
    if text not in RULE_ACTIONS:
        raise InvalidInput(
            f"Action {text[:40]!r} is not one of {', '.join(RULE_ACTIONS)}", reason="then"
        )
    return text


def _check_message(message: str | None) -> str:
    text = (message or "").strip()
    if len(text) > MAX_MESSAGE or any(ord(c) < 32 for c in text):
        raise InvalidInput(
            f"Message must be one line of at most {MAX_MESSAGE} characters", reason="message"
        )
    return text


# --- services ---------------------------------------------------------------------------------


def add_rule(
    db: Database, *, name: str, scope: str, condition: str, action: str, message: str = ""
) -> Rule:
    """Store a new rule and return it.

    Every field is checked before anything is written: InvalidInput naming the field
    (``name``, ``scope``, ``if``, ``then``, ``message``), NotFound for an unknown printer,
    queue or group, Conflict for a name already taken (the unique name decides a race).
    """
    rule_name = _check_name(name)
    condition_kind, condition_value = parse_condition(condition)
    rule_action = _check_action(action)
    text = _check_message(message)
    with db.transaction() as session:
        scope_kind, scope_name = parse_scope(session, scope)
        if session.scalar(select(PrintRule.id).where(PrintRule.name == rule_name)) is not None:
            raise Conflict(f"Rule '{rule_name}' already exists", reason="name")
        row = PrintRule(
            name=rule_name,
            scope_kind=scope_kind,
            scope_name=scope_name,
            condition_kind=condition_kind,
            condition_value=condition_value,
            action=rule_action,
            message=text,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError as exc:
            raise Conflict(f"Rule '{rule_name}' already exists", reason="name") from exc
        return Rule.of(row)


def rules_in_force(session: Session) -> list[Rule]:
    """Every rule, strongest action first, then by name (the order ``rule list`` shows)."""
    rows = session.scalars(select(PrintRule).order_by(PrintRule.name))
    return sorted((Rule.of(r) for r in rows), key=lambda r: _STRENGTH[r.action])


def list_rules(db: Database) -> list[Rule]:
    """Every rule, as ``rules_in_force`` orders them, read in its own transaction."""
    with db.read() as session:
        return rules_in_force(session)


def remove_rule(db: Database, name: str) -> None:
    """Delete the rule called ``name``; RuleNotFound when there is none."""
    rule_name = (name or "").strip()
    with db.transaction() as session:
        removed = session.execute(delete(PrintRule).where(PrintRule.name == rule_name)).rowcount
        if not removed:
            raise RuleNotFound(f"Rule {rule_name[:100]!r} does not exist", reason="name")


# --- judging ----------------------------------------------------------------------------------


def _groups_of(session: Session, user: User) -> frozenset[str]:
    return frozenset(
        session.scalars(
            select(UserGroup.name)
            .join(UserGroupMember, UserGroupMember.group_id == UserGroup.id)
            .where(UserGroupMember.user_id == user.id)
        )
    )


def facts_of(
    session: Session,
    *,
    user: User,
    printer: str,
    queue: str,
    pages: int,
    options: Mapping[str, str],
    colours: PageColours | None,
    source_type: str,
) -> PrintFacts:
    """The facts of a print with its merged, validated ``options`` (only ``user.id`` is read)."""
    _, sheets = count_sheets(pages, options)
    coloured = not is_grayscale(options) and (colours is None or colours.pages_color > 0)
    return PrintFacts(
        printer=printer,
        queue=queue,
        groups=_groups_of(session, user),
        pages=pages,
        copies=int(options.get("copies", "1")),
        sheets=sheets,
        color=coloured,
        source_type=source_type.split(";", 1)[0].strip().lower(),
    )


def _in_scope(rule: Rule, facts: PrintFacts) -> bool:
    if rule.scope == "all":
        return True
    kind, _, name = rule.scope.partition(":")
    if kind == "printer":
        return facts.printer == name
    if kind == "queue":
        return facts.queue == name
    return name in facts.groups


def _meets(rule: Rule, facts: PrintFacts) -> bool:
    condition = rule.condition
    if condition == "color":
        return facts.color
    if condition.startswith("type:"):
        return fnmatch.fnmatchcase(facts.source_type, condition[5:])
    kind, _, number = condition.partition(">")
    counted = {"pages": facts.pages, "copies": facts.copies, "sheets": facts.sheets}[kind]
    return counted > int(number)


def judge(rules: Iterable[Rule], facts: PrintFacts) -> Judgement:
    """The rules ``facts`` meets, strongest first (refuse, hold, then changes); pure."""
    matched = [r for r in rules if _in_scope(r, facts) and _meets(r, facts)]
    return Judgement(tuple(sorted(matched, key=lambda r: _STRENGTH[r.action])))


def apply_changes(
    requested: Mapping[str, str], changes: Iterable[str], printer: PrinterInfo
) -> dict[str, str]:
    """``requested`` with the rules' changes made, where the printer supports them."""
    changed = dict(requested)
    for change in changes:
        if change == "grayscale" and "monochrome" in printer.print_color_mode_supported:
            changed["print-color-mode"] = "monochrome"
        elif change == "duplex" and "two-sided-long-edge" in printer.sides_supported:
            changed["sides"] = "two-sided-long-edge"
    return changed
