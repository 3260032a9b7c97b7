"""The console's People & money section (docs/admin-console.md, "People and money").

Each handler parses, calls one service (`printsrv.operations.directory`, or for money
`printsrv.accounts.actions.change_balance`, the REST and JSON-RPC adjustments' own path),
and renders. A refused input is shown beside its field with a 4xx status, nothing changed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from printsrv import errors
from printsrv.accounts import actions
from printsrv.accounts import service as accounting
from printsrv.operations import directory
from printsrv.people.group_defaults import GroupDefaults
from printsrv.platform.threads import in_thread
from printsrv.web.admin.pages import AdminRequest, admin_page, see_other
from printsrv.web.views import status_for

__all__ = [
    "adjust_shared",
    "adjust_user",
    "change_membership",
    "group_page",
    "groups_page",
    "regenerate_uuid",
    "search",
    "set_enabled",
    "shared_page",
    "user_page",
]

COMMENT_REQUIRED = "Please say why: the comment goes into the ledger with the change."


def page_number(page: AdminRequest) -> int:
    """The `page` query parameter (0 when absent); InvalidInput when it is not a number."""
    text = page.request.query_params.get("page", "0")
    if not text.isdigit() or len(text) > 6:
        raise errors.InvalidInput(f"Page {text[:20]!r} is not a page number.", reason="page")
    return int(text)


def parse_adjustment(form: dict[str, str]) -> tuple[Decimal, str]:
    """The amount and comment of an adjustment form; InvalidInput naming the field else."""
    amount = accounting.parse_amount(form.get("amount", "").strip(), param="amount")
    comment = form.get("comment", "").strip()
    if not comment:
        raise errors.InvalidInput(COMMENT_REQUIRED, reason="comment")
    return amount, accounting.check_comment(comment, param="comment")


def field_of(error: errors.PrintsrvError, fields: tuple[str, ...]) -> str:
    """The form field a refusal is about ("" when none: shown above the form)."""
    return error.reason if error.reason in fields else ""


# --- users ---------------------------------------------------------------------------------


@admin_page("admin/people.html", section="people")
async def search(page: AdminRequest) -> dict[str, Any] | Response:
    """GET /admin/people: find users by name, full name, email or card (`q`, `page`)."""
    query = page.request.query_params.get("q", "")
    try:
        found = await in_thread(
            directory.search_users, page.installation, query, page=page_number(page)
        )
    except errors.InvalidInput as refusal:
        empty = directory.UserSearch(query[: directory.MAX_QUERY], 0, [], False)
        return page.render(
            {"found": empty, "problem": refusal.message}, status_code=status_for(refusal)
        )
    return {"found": found, "problem": None}


def _user_path(name: str) -> str:
    return "/admin/people/users/" + quote(name, safe="")


async def _user_context(
    page: AdminRequest,
    name: str,
    *,
    ledger_page: int = 0,
    problems: dict[str, str] | None = None,
    entered: dict[str, str] | None = None,
    new_uuid: str | None = None,
    notice: str | None = None,
) -> dict[str, Any]:
    shown = await in_thread(directory.user_page, page.installation, name, ledger_page=ledger_page)
    return {
        "shown": shown,
        "path": _user_path(shown.user.user_name),
        "currency": page.installation.config.snapshot()["financial.currency-code"],
        "problems": problems or {},
        "entered": entered or {},
        "new_uuid": new_uuid,
        "notice": notice,
    }


@admin_page("admin/user.html", section="people")
async def user_page(page: AdminRequest) -> dict[str, Any]:
    """GET /admin/people/users/{name}: a user's groups, aliases, money and documents."""
    notices = {
        "adjusted": "The balance was adjusted.",
        "enabled": "The user was enabled.",
        "disabled": "The user was disabled.",
    }
    done = page.request.query_params.get("done", "")
    return await _user_context(
        page,
        page.request.path_params["name"],
        ledger_page=page_number(page),
        notice=notices.get(done),
    )


@admin_page("admin/user.html", section="people")
async def adjust_user(page: AdminRequest) -> dict[str, Any] | Response:
    """POST /admin/people/users/{name}/adjust: add `amount` (negative: take it) with
    `comment`, one ADJUST row in the user's ledger."""
    name = page.request.path_params["name"]
    try:
        amount, comment = parse_adjustment(page.form)
        change = actions.BalanceChange(
            "USER", name, amount, adjust=True, comment=comment, admin=page.admin.actor
        )
        await actions.change_balance(page.installation, change)
    except errors.InvalidInput as refusal:
        context = await _user_context(
            page,
            name,
            problems={field_of(refusal, ("amount", "comment")): refusal.message},
            entered={key: page.form.get(key, "")[:1000] for key in ("amount", "comment")},
        )
        return page.render(context, status_code=status_for(refusal))
    return see_other(_user_path(name) + "?done=adjusted#money")


@admin_page("admin/user.html", section="people")
async def set_enabled(page: AdminRequest) -> Response:
    """POST /admin/people/users/{name}/enabled: `enabled` Y or N."""
    name = page.request.path_params["name"]
    value = page.form.get("enabled", "")
    if value not in ("Y", "N"):
        raise errors.InvalidInput(f"enabled must be Y or N, not {value[:20]!r}.")
    changed = await in_thread(directory.set_user_enabled, page.installation, name, value == "Y")
    return see_other(_user_path(changed) + ("?done=enabled" if value == "Y" else "?done=disabled"))


@admin_page("admin/user.html", section="people")
async def regenerate_uuid(page: AdminRequest) -> dict[str, Any]:
    """POST /admin/people/users/{name}/uuid: a new UUID credential, shown on this answer
    only (the page is not cached, and a reload asks before it posts again)."""
    name = page.request.path_params["name"]
    credential = await in_thread(directory.regenerate_uuid, page.installation, name)
    return await _user_context(page, name, new_uuid=credential)


# --- groups ---------------------------------------------------------------------------------


@admin_page("admin/groups.html", section="people")
async def groups_page(page: AdminRequest) -> dict[str, Any]:
    """GET /admin/people/groups: every group with its members and defaults."""
    return {"groups": await in_thread(directory.list_group_views, page.installation)}


# group_defaults names its refusals by JSON-RPC's parameters; the form's fields are these.
_DEFAULTS_FIELDS = {
    "userGroup.accounting.balance": "initial_credit",
    "userGroup.accounting.creditLimit": "credit_limit_policy",
    "userGroup.accounting.creditLimitAmount": "credit_limit",
}


def parse_defaults(form: dict[str, str]) -> GroupDefaults:
    """The group defaults form (an empty field: unchanged); InvalidInput naming the field."""

    def amount(field: str) -> Decimal | None:
        text = form.get(field, "").strip()
        return accounting.parse_amount(text, param=field) if text else None

    policy = form.get("credit_limit_policy", "").strip() or None
    return GroupDefaults(amount("initial_credit"), policy, amount("credit_limit"))


@admin_page("admin/group.html", section="people")
async def group_page(page: AdminRequest) -> dict[str, Any] | Response:
    """GET /admin/people/groups/{name}: one group, its members and defaults; POST: change
    the defaults (`initial_credit`, `credit_limit_policy`, `credit_limit`)."""
    name = page.request.path_params["name"]
    if page.request.method == "POST":
        try:
            changed = await in_thread(
                directory.change_group_defaults, page.installation, name, parse_defaults(page.form)
            )
        except errors.InvalidInput as refusal:
            field = _DEFAULTS_FIELDS.get(refusal.reason or "", refusal.reason or "")
            group = await in_thread(directory.group_view, page.installation, name)
            context = {
                "group": group,
                "problems": {field: refusal.message},
                "entered": {k: page.form.get(k, "")[:40] for k in _DEFAULTS_FIELDS.values()},
                "notice": None,
            }
            return page.render(context, status_code=status_for(refusal))
        return see_other("/admin/people/groups/" + quote(changed.name, safe="") + "?changed=Y")
    group = await in_thread(directory.group_view, page.installation, name)
    params = page.request.query_params
    added, removed = params.get("added"), params.get("removed")
    notice = (
        "The defaults were saved."
        if params.get("changed")
        else f"Added {added[:100]}."
        if added
        else f"Removed {removed[:100]}."
        if removed
        else None
    )
    return {"group": group, "problems": {}, "entered": {}, "notice": notice}


@admin_page("admin/group.html", section="people")
async def change_membership(page: AdminRequest) -> dict[str, Any] | Response:
    """POST /admin/people/groups/{name}/members: add `user` to the group (`action` add) or
    take them out (`action` remove), as `printsrv group member add|remove`."""
    name = page.request.path_params["name"]
    action = page.form.get("action", "")
    if action not in ("add", "remove"):
        raise errors.InvalidInput(f"action must be add or remove, not {action[:20]!r}.")
    user = page.form.get("user", "")
    try:
        changed = await in_thread(
            directory.change_membership,
            page.installation,
            name,
            user,
            add=action == "add",
            actor=page.admin.actor,
        )
    except (errors.InvalidInput, errors.NotFound, errors.Conflict) as refusal:
        group = await in_thread(directory.group_view, page.installation, name)  # NotFound: page
        context = {
            "group": group,
            "problems": {"member": refusal.message},
            "entered": {"member": user[:100]},
            "notice": None,
        }
        return page.render(context, status_code=status_for(refusal))
    done = "added" if action == "add" else "removed"
    path = "/admin/people/groups/" + quote(name, safe="")
    return see_other(f"{path}?{done}={quote(changed, safe='')}#members-heading")


# --- SHARED accounts -----------------------------------------------------------------------


async def _shared_context(
    page: AdminRequest,
    *,
    problems: dict[str, str] | None = None,
    entered: dict[str, str] | None = None,
    target: str = "",
    notice: str | None = None,
) -> dict[str, Any]:
    return {
        "accounts": await in_thread(directory.list_shared_accounts, page.installation),
        "currency": page.installation.config.snapshot()["financial.currency-code"],
        "problems": problems or {},
        "entered": entered or {},
        "target": target,
        "notice": notice,
    }


@admin_page("admin/shared.html", section="people")
async def shared_page(page: AdminRequest) -> dict[str, Any] | Response:
    """GET /admin/people/shared: the SHARED accounts; POST: create one (`name`)."""
    if page.request.method == "POST":
        name = page.form.get("name", "")
        try:
            created = await in_thread(directory.add_shared_account, page.installation, name)
        except (errors.InvalidInput, errors.Conflict) as refusal:
            context = await _shared_context(
                page, problems={"name": refusal.message}, entered={"name": name[:200]}
            )
            return page.render(context, status_code=status_for(refusal))
        return see_other("/admin/people/shared?created=" + quote(created, safe=""))
    created = page.request.query_params.get("created")
    adjusted = page.request.query_params.get("adjusted")
    notice = f"Created {created}." if created else f"Adjusted {adjusted}." if adjusted else None
    return await _shared_context(page, notice=notice)


@admin_page("admin/shared.html", section="people")
async def adjust_shared(page: AdminRequest) -> dict[str, Any] | Response:
    """POST /admin/people/shared/adjust: add `amount` to the SHARED account `account`
    with `comment`, one ADJUST row."""
    name = page.form.get("account", "")
    try:
        amount, comment = parse_adjustment(page.form)
        change = actions.BalanceChange(
            "SHARED", name, amount, adjust=True, comment=comment, admin=page.admin.actor
        )
        await actions.change_balance(page.installation, change)
    except errors.InvalidInput as refusal:
        context = await _shared_context(
            page,
            problems={field_of(refusal, ("amount", "comment")): refusal.message},
            entered={key: page.form.get(key, "")[:1000] for key in ("amount", "comment")},
            target=name,
        )
        return page.render(context, status_code=status_for(refusal))
    return see_other("/admin/people/shared?adjusted=" + quote(name, safe=""))
