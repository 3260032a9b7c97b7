"""JSON-RPC methods (printsrv extensions, behind api.jsonrpc.admin.enable) for print rules and
the documents they hold: addPrintRule, listPrintRules, removePrintRule, approveDocument,
denyDocument. Each calls the one service the CLI and REST call."""

from __future__ import annotations

from typing import Any

from financial.money import to_wire
from printsrv.printing import approval
from printsrv.printing import rules as rule_service
from printsrv.rpc.jsonrpc_methods import CallContext, basic_result, rpc_method, text_param

JSONRPC_ADMIN = "jsonrpc"


def _rule_json(rule: rule_service.Rule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "scope": rule.scope,
        "condition": rule.condition,
        "action": rule.action,
        "message": rule.message,
    }


@rpc_method("addPrintRule")
def add_print_rule(
    context: CallContext,
    name: Any,
    scope: Any,
    condition: Any,
    action: Any,
    message: Any = None,
) -> dict[str, Any]:
    """Add a rule, as `printsrv rule add NAME --scope S --if CONDITION --then ACTION`."""
    added = rule_service.add_rule(
        context.installation.db,
        name=text_param("name", name),
        scope=text_param("scope", scope),
        condition=text_param("condition", condition),
        action=text_param("action", action),
        message=text_param("message", message, required=False),
    )
    return {"data": {"@type": "PRINT_RULE", **_rule_json(added)}}


@rpc_method("listPrintRules")
def list_print_rules(context: CallContext) -> dict[str, Any]:
    """Every rule, strongest action first."""
    found = rule_service.list_rules(context.installation.db)
    return {"data": {"@type": "PRINT_RULES", "rules": [_rule_json(r) for r in found]}}


@rpc_method("removePrintRule")
def remove_print_rule(context: CallContext, name: Any) -> dict[str, Any]:
    """Remove a rule by name."""
    rule_service.remove_rule(context.installation.db, text_param("name", name))
    return basic_result(0, "removed")


def _decision_json(decision: approval.Decision) -> dict[str, Any]:
    return {
        "data": {
            "@type": "DOCUMENT_DECISION",
            "id": decision.document_id,
            "state": decision.state,
            "printer": decision.printer,
            "cost": to_wire(decision.cost),
            "jobState": decision.job_state,
            "error": decision.message,
        }
    }


@rpc_method("approveDocument")
def approve_document(context: CallContext, ref: Any, comment: Any = None) -> dict[str, Any]:
    """Approve a held document (its id, or ext_id=...): charge it and print it."""
    decided = approval.approve_document(
        context.installation,
        text_param("ref", str(ref) if isinstance(ref, int) else ref),
        admin=JSONRPC_ADMIN,
        comment=text_param("comment", comment, required=False),
    )
    return _decision_json(decided)


@rpc_method("denyDocument")
def deny_document(context: CallContext, ref: Any, comment: Any = None) -> dict[str, Any]:
    """Deny a held document (its id, or ext_id=...), with a reason; nothing is charged."""
    decided = approval.deny_document(
        context.installation,
        text_param("ref", str(ref) if isinstance(ref, int) else ref),
        admin=JSONRPC_ADMIN,
        comment=text_param("comment", comment, required=False),
    )
    return _decision_json(decided)


# jsonrpc_registry.py assembles the method table from this tuple.
METHODS = (add_print_rule, list_print_rules, remove_print_rule, approve_document, deny_document)
