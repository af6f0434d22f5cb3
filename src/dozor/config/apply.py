"""Make the database match a monitors file: a plan first, then one transaction.

``dozor apply`` owns the monitors and windows it created (``managed_by = "yaml"``): those
missing from the file are removed. Monitors made by hand (CLI, API) are never removed;
one with the same name as a monitor in the file is taken over and updated. Applying the
same file twice changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dozor.config.specs import MaintenanceSpec, MonitorSpec
from dozor.config.yamlfile import Document
from dozor.store import monitors as store

MANAGER = "yaml"


@dataclass
class Plan:
    create: list[MonitorSpec] = field(default_factory=list)
    update: list[tuple[int, MonitorSpec, list[str]]] = field(default_factory=list)
    remove: list[tuple[int, str]] = field(default_factory=list)
    save_windows: list[MaintenanceSpec] = field(default_factory=list)
    remove_windows: list[tuple[int, str]] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.remove or self.save_windows
                    or self.remove_windows)

    def lines(self) -> list[str]:
        out = [f"+ create monitor {s.name}" for s in self.create]
        out += [f"~ update monitor {s.name} ({', '.join(changed)})"
                for _, s, changed in self.update]
        out += [f"- remove monitor {name}" for _, name in self.remove]
        out += [f"~ save maintenance window {w.name}" for w in self.save_windows]
        out += [f"- remove maintenance window {name}" for _, name in self.remove_windows]
        return out


async def make_plan(connection: AsyncConnection, document: Document,
                    org_id: int = store.DEFAULT_ORG) -> Plan:
    plan = Plan()
    existing = {row.name: row for row in await store.list_monitors(connection, org_id)}
    wanted = {spec.name for spec in document.monitors}
    for spec in document.monitors:
        row = existing.get(spec.name)
        if row is None:
            plan.create.append(spec)
            continue
        changed = _changed_fields(row, spec.row_values())
        if changed or row.managed_by != MANAGER:
            plan.update.append((row.id, spec, changed or ["now managed by this file"]))
        else:
            plan.unchanged += 1
    plan.remove = [(row.id, name) for name, row in existing.items()
                   if name not in wanted and row.managed_by == MANAGER]
    await _plan_windows(connection, document, org_id, plan)
    return plan


async def _plan_windows(connection: AsyncConnection, document: Document, org_id: int,
                        plan: Plan) -> None:
    stored = {row.name: row for row in await store.list_maintenance(connection, org_id)}
    for window in document.maintenance:
        row = stored.get(window.name)
        values = store.maintenance_values(window)
        if row is None or row.managed_by != MANAGER or _changed_fields(row, values):
            plan.save_windows.append(window)
    names = {w.name for w in document.maintenance}
    plan.remove_windows = [(row.id, name) for name, row in stored.items()
                           if name not in names and row.managed_by == MANAGER]


def _changed_fields(row: Any, values: dict[str, Any]) -> list[str]:
    return [key for key, value in values.items()
            if key != "name" and getattr(row, key) != value]


async def apply_plan(connection: AsyncConnection, plan: Plan,
                     org_id: int = store.DEFAULT_ORG) -> None:
    """Carry out a plan inside the caller's transaction."""
    for monitor_id, _ in plan.remove:
        await store.delete_monitor(connection, monitor_id)
    for monitor_id, spec, _ in plan.update:
        await store.update_monitor(connection, monitor_id, spec, managed_by=MANAGER)
    for spec in plan.create:
        await store.create_monitor(connection, spec, org_id, managed_by=MANAGER)
    for window_id, _ in plan.remove_windows:
        await store.delete_maintenance(connection, window_id)
    for window in plan.save_windows:
        await store.save_maintenance(connection, window, org_id, managed_by=MANAGER)
