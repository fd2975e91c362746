"""What blocks a task's alerts: its website's ``depends_on`` entries (from the
configuration file) matched against the tasks of the read model, those not ok now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
from fastapi import Request

from configuration import dependencies


@dataclass(frozen=True)
class TaskRef:
    """A task as ``depends_on`` entries are matched against it, with its severity now."""

    id: str
    domain: str
    url: str
    severity: str | None


async def task_refs(conn: asyncpg.Connection) -> list[TaskRef]:
    rows = await conn.fetch("SELECT id, domain, url, severity FROM tasks WHERE removed_at IS NULL")
    return [TaskRef(r["id"], r["domain"], r["url"], r["severity"]) for r in rows]


async def blocked_by(request: Request, conn: asyncpg.Connection, task: dict[str, Any]) -> list[str]:
    """The dependencies of the task's website that are not ok now: while they are, the
    notifier holds the task's alerts back."""
    entries = request.app.state.auth.settings.depends.get(task["domain"])
    if not entries:
        return []
    refs = await task_refs(conn)
    ids: set[str] = set()
    for e in entries:
        ids |= dependencies.targets(e, refs)
    return sorted(
        {
            r.url
            for r in refs
            if r.id in ids and r.id != task["id"] and r.severity not in (None, "ok")
        }
    )
