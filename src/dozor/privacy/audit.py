"""The audit log: who did what security-relevant thing, when and from where."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.privacy import keys
from dozor.store import account_tables as a

# Actions the audit log records; exported with the account.
ACTIONS = frozenset({
    "signup", "login", "login_failed", "logout", "token_created", "token_revoked",
    "password_changed", "password_reset", "email_confirmed", "totp_enabled",
    "totp_disabled", "recovery_code_used", "invitation_accepted",
    "member_added", "member_removed", "role_changed", "export", "erasure",
    # The data lifecycle (``privacy``): requests, restriction, breach notices.
    "erasure_requested", "restricted", "restriction_lifted", "breach_notified",
    # Reading contacts, points, the delivery log or members (``api.personal_reads``).
    "personal_data_read",
    # Who gets alerts: recipients, their confirmation, and the policies choosing them.
    "contact_created", "contact_changed", "contact_deleted", "point_added", "point_changed",
    "point_removed", "point_verification_sent", "point_confirmed", "policy_created",
    "policy_changed", "policy_deleted",
    # Acts that silence alerts: acknowledging cancels escalations, a window suspends checks.
    "incident_acknowledged", "maintenance_created", "maintenance_changed",
    "maintenance_deleted",
    # A published page shows monitors to anyone: who did that, and when, is on record.
    "status_page_created", "status_page_published", "status_page_unpublished",
    "status_page_deleted",
    # The operator's acts on an organisation (``dozor orgs``): no user, so recorded here.
    "plan_changed", "sms_credits_changed",
    # The operator's remote probes (``dozor probes``): no organisation's.
    "probe_added", "probe_revoked",
})


async def record(connection: AsyncConnection, action: str, *, org_id: int | None,
                 user_id: int | None, target: str | None = None, ip: str | None = None,
                 detail: dict[str, Any] | None = None) -> None:
    assert action in ACTIONS, action
    # The address is the organisation's personal data; an entry of no organisation (the
    # operator's acts) has it sealed with the instance key.
    await connection.execute(insert(a.audit_log).values(
        org_id=org_id, user_id=user_id, action=action, target=target,
        at=datetime.now(UTC), ip=await keys.personal(connection, org_id, ip), detail=detail))
