"""Alert policies: which contacts hear about which monitors.

An organisation without policies alerts every contact about every monitor. Once it has
one, a monitor's alerts go to the contacts of the policies that cover it (by name, by tag,
or all monitors), and to nobody else; the router reads them per state change::

    >>> on_call = PolicySpec(name="web", contact_ids=[1], tags=["web"])
    >>> covers(on_call, "shop", {"web", "eu"}), covers(on_call, "db", {"internal"})
    (True, False)
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.store import notify_tables as n

Names = list[Annotated[str, Field(min_length=1, max_length=200)]]
ContactId = Annotated[int, Field(ge=1, le=2**31 - 1)]  # ids are 32-bit on PostgreSQL


class PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    contact_ids: list[ContactId] = Field(min_length=1, max_length=500)
    all_monitors: bool = False
    monitor_names: Names = Field(default_factory=list, max_length=10_000)
    tags: Names = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _chooses_monitors(self) -> PolicySpec:
        # A policy covering nothing would still silence the "everyone hears" default.
        if not (self.all_monitors or self.monitor_names or self.tags):
            raise ValueError("all_monitors: choose all_monitors, monitor_names or tags")
        self.contact_ids = list(dict.fromkeys(self.contact_ids))
        return self


def covers(policy: Any, monitor_name: str, tags: Collection[str]) -> bool:
    """Whether a policy (a spec or a stored row) covers this monitor."""
    return bool(policy.all_monitors or monitor_name in policy.monitor_names
                or set(tags) & set(policy.tags))


def policy_fields(row: Any) -> dict[str, Any]:
    """A stored policy as its spec's fields (what a change is merged onto)."""
    return {key: getattr(row, key) for key in PolicySpec.model_fields}


async def unknown_contacts(connection: AsyncConnection, org_id: int,
                           contact_ids: Sequence[int]) -> list[int]:
    """The ids that are not contacts of this organisation (another's are unknown too)."""
    c = n.contacts.c
    known = set((await connection.execute(select(c.id).where(
        c.org_id == org_id, c.id.in_(contact_ids)))).scalars())
    return [i for i in contact_ids if i not in known]


async def add_policy(connection: AsyncConnection, org_id: int, spec: PolicySpec,
                     now: datetime) -> int:
    result = await connection.execute(insert(n.alert_policies).values(
        **spec.model_dump(), org_id=org_id, created_at=now).returning(n.alert_policies.c.id))
    return int(result.scalar_one())


async def update_policy(connection: AsyncConnection, policy_id: int,
                        spec: PolicySpec) -> None:
    a = n.alert_policies.c
    await connection.execute(update(n.alert_policies).where(a.id == policy_id)
                             .values(**spec.model_dump(), version=a.version + 1))


async def remove_policy(connection: AsyncConnection, policy_id: int) -> None:
    await connection.execute(delete(n.alert_policies)
                             .where(n.alert_policies.c.id == policy_id))


async def find_policy(connection: AsyncConnection, org_id: int, name: str) -> int | None:
    a = n.alert_policies.c
    found = await connection.execute(select(a.id).where(a.org_id == org_id, a.name == name))
    return found.scalar_one_or_none()


async def only_recipient_of(connection: AsyncConnection, org_id: int,
                            contact_id: int) -> list[str]:
    """Names of policies this contact is the only recipient of: removing the contact would
    leave their monitors' alerts with nobody."""
    a = n.alert_policies.c
    rows = await connection.execute(select(a.name, a.contact_ids).where(a.org_id == org_id))
    return [name for name, ids in rows.all() if list(ids) == [contact_id]]


async def forget_contact(connection: AsyncConnection, org_id: int, contact_id: int) -> None:
    """Take a contact (about to be removed) out of every policy that names it."""
    a = n.alert_policies.c
    rows = (await connection.execute(select(a.id, a.contact_ids)
                                     .where(a.org_id == org_id))).all()
    for policy_id, ids in rows:
        if contact_id in ids:
            await connection.execute(update(n.alert_policies).where(a.id == policy_id).values(
                contact_ids=[i for i in ids if i != contact_id], version=a.version + 1))
