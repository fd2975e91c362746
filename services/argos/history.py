"""``tocsin import argos``: an Argos database's results into the log, at their original times.

Each Argos task is matched to the configured Tocsin task made of the same URL,
method, request data, check, expected value and IP version (its id says so). Each
of its results becomes a ``check.requested`` (the request the projector checks
a completion against), a ``check.completed`` and a ``task.judged`` (Argos's
status and severity) under ``tocsin.imported.…``: the projector folds them into
results, severity changes and uptime, while agents (WORK holds
``tocsin.check.requested.…`` only), the scheduler, which judges
``tocsin.check.completed.…``, and the notifier never see them, so history raises
no alert. Message ids and the last imported result of each group make a second
import add nothing. A group Tocsin has judged already is left alone: imported
events fold in log order, so older history would pass for its current state.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from nats.js.errors import NotFoundError

from configuration.config import task_id
from events import codec, streams, subjects
from events.types import (
    CheckCompleted,
    CheckOutcome,
    CheckRequested,
    CheckSpec,
    Judgement,
    Observation,
    TaskDef,
    TaskJudged,
)
from runtime import bus
from services.argos.service import agent_name
from services.argos.translate import tocsin_expected, tocsin_request_data

SEVERITIES = ("ok", "warning", "critical", "unknown")


@dataclass
class Report:
    tasks: int = 0
    matched: int = 0
    unmatched: list[str] = field(default_factory=list)
    published: int = 0
    already: int = 0
    judged_by_tocsin: list[str] = field(default_factory=list)
    #: Results the event contract refuses (which and why): not imported.
    refused: list[str] = field(default_factory=list)


def sqlalchemy_to_libpq(url: str) -> str:
    """Argos's ``general.db.url`` is SQLAlchemy's (``postgresql+psycopg2://``)."""
    scheme, sep, rest = url.partition("://")
    return ("postgresql" + sep + rest) if scheme.startswith("postgresql") else url


TASKS_QUERY = 'SELECT id, url, method, request_data, "check", expected, ip_version FROM tasks'
RESULTS_QUERY = (
    "SELECT id, task_id, agent_id, submitted_at, status, severity, {context} AS context "
    "FROM results ORDER BY submitted_at, id"
)


async def read_argos(url: str) -> tuple[list[Any], list[Any]]:
    """Argos's tasks and results, from PostgreSQL or SQLite (both Argos's choices)."""
    if url.startswith("sqlite"):
        return await asyncio.to_thread(_read_sqlite, url)
    conn = await asyncpg.connect(sqlalchemy_to_libpq(url))
    try:
        tasks = await conn.fetch(TASKS_QUERY)
        results = await conn.fetch(RESULTS_QUERY.format(context="context::text"))
    finally:
        await conn.close()
    return tasks, results


def _read_sqlite(url: str) -> tuple[list[Any], list[Any]]:
    # sqlite:///relative/path or sqlite:////absolute/path, as SQLAlchemy writes them.
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path or not Path(path).is_file():
        raise OSError(f"no SQLite database at {path!r}")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        tasks = conn.execute(TASKS_QUERY).fetchall()
        results = [
            {**dict(r), "submitted_at": datetime.fromisoformat(r["submitted_at"])}
            for r in conn.execute(RESULTS_QUERY.format(context="context"))
        ]
    except sqlite3.Error as exc:
        raise OSError(f"{path}: {exc}") from None
    finally:
        conn.close()
    return tasks, results


class Unreadable(ValueError):
    """An Argos task row Tocsin cannot read (a hand-edited or older database): it is listed as
    unmatched with this reason and the rest is imported."""


def _read(row: Any, column: str, read: Callable[[Any], Any], what: str = "") -> Any:
    try:
        return read(row[column])
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            why = f"not JSON ({exc})"
        else:
            why = f"{type(exc).__name__}: {exc}" if isinstance(exc, KeyError) else str(exc)
        raise Unreadable(f"cannot read its {what or column} {row[column]!r}: {why}") from None


def tocsin_id(row: Any) -> str:
    """The id of the Tocsin task made of what makes this Argos task (``Unreadable``)."""
    rd = _read(row, "request_data", tocsin_request_data)
    expected = _read(
        row, "expected", lambda value: tocsin_expected(row["check"], value), "expected value"
    )
    version = _read(row, "ip_version", int)
    return task_id(row["url"], row["method"], version, rd, row["check"], expected)


def events_for(
    task: TaskDef, result: Any, previous: str | None, tz: tzinfo
) -> tuple[CheckCompleted, Judgement]:
    """One Argos result as a completion and the judgement Argos made of it."""
    at = result["submitted_at"].replace(tzinfo=tz).timestamp()
    context = json.loads(result["context"]) if result["context"] else {}
    # on-check: Argos's server graded the certificate; its severity says how it went.
    status = "success" if result["status"] == "on-check" else result["status"]
    if status not in ("success", "failure", "error"):
        status = "error"
    detail = ""
    error = None
    if isinstance(context, dict) and "error_message" in context:
        detail = f"{context.get('error_type', 'error')}: {context['error_message']}"
        error = detail if status == "failure" else None
    elif isinstance(context, dict):
        detail = json.dumps({k: v for k, v in context.items()}, sort_keys=True)[:500]
    retrieved = context.get("retrieved") if isinstance(context, dict) else None
    completion = CheckCompleted(
        at=at,
        request=f"argos-{result['id']}",
        group=task.group,
        agent=agent_name(result["agent_id"] or ""),
        location="argos",
        started=at,
        observation=Observation(
            status=retrieved if isinstance(retrieved, int) else None,
            error=error,
            error_kind="argos" if error else None,
        ),
        outcomes=[CheckOutcome(task.id, task.check, status, detail)],  # type: ignore[arg-type]
    )
    severity = result["severity"] if result["severity"] in SEVERITIES else "unknown"
    judgement = Judgement(
        task=task.id,
        severity=severity,  # type: ignore[arg-type]
        previous=previous,  # type: ignore[arg-type]
        reason=f"Argos: {result['status']}" + (f" ({detail})" if detail else ""),
    )
    return completion, judgement


async def _last(js: Any, subject: str) -> Any:
    try:
        msg = await js.get_last_msg(streams.EVENTS, subject)
    except NotFoundError:
        return None
    return codec.decode(msg.data, subject)


async def import_history(
    js: Any, argos_url: str, configured: dict[str, TaskDef], tz: tzinfo
) -> Report:
    tasks, results = await read_argos(argos_url)
    report = Report(tasks=len(tasks))
    by_argos: dict[int, TaskDef] = {}
    for row in tasks:
        name = f"{row['url']} {row['check']} (IPv{row['ip_version']})"
        try:
            tid = tocsin_id(row)
        except Unreadable as exc:
            report.unmatched.append(f"{name}: {exc}")
            continue
        if tid in configured:
            by_argos[row["id"]] = configured[tid]
            report.matched += 1
        else:
            report.unmatched.append(name)
    # Where each group stands: judged by Tocsin already, or imported up to some result.
    groups = {t.group for t in by_argos.values()}
    done: dict[str, tuple[float, int]] = {}
    severity: dict[str, str] = {}
    for group in sorted(groups):
        if await _last(js, subjects.judged(group)) is not None:
            report.judged_by_tocsin.append(group)
            continue
        last = await _last(js, subjects.imported_completed(group))
        if isinstance(last, CheckCompleted):
            done[group] = (last.at, int(last.request.removeprefix("argos-")))
        judged = await _last(js, subjects.imported_judged(group))
        if isinstance(judged, TaskJudged):
            severity.update({j.task: j.severity for j in judged.judgements})
    skip = set(report.judged_by_tocsin)
    for result in results:
        task = by_argos.get(result["task_id"])
        if task is None or task.group in skip:
            continue
        completion, judgement = events_for(task, result, severity.get(task.id), tz)
        if task.group in done and (completion.at, result["id"]) <= done[task.group]:
            report.already += 1
            continue
        request = CheckRequested(
            at=completion.at,
            request=completion.request,
            group=task.group,
            location=completion.location,
            url=task.url,
            method=task.method,
            ip_version=task.ip_version,
            timeout=task.timeout,
            due=completion.at,
            checks=[CheckSpec(task.id, task.check, task.expected)],
            request_data=task.request_data,
        )
        verdict = TaskJudged(
            at=completion.at,
            group=task.group,
            completion=0,  # the completion's sequence, once it is in the log
            next_run=completion.at + task.frequency,
            judgements=[judgement],
        )
        try:
            # An Argos row (a date before 2000, an error text past a field's bound) may not
            # make an event of the log: it is reported, never published as a dead letter.
            for event, subject in (
                (request, subjects.imported_requested(completion.location, task.group)),
                (completion, subjects.imported_completed(task.group)),
                (verdict, subjects.imported_judged(task.group)),
            ):
                codec.encode_admitted(event, subject)
        except codec.DecodeError as exc:
            report.refused.append(f"result {result['id']}: {exc}")
            continue
        await bus.publish_until_acked(
            js,
            subjects.imported_requested(completion.location, task.group),
            codec.encode(request),
            f"argos-import.requested.{result['id']}",
        )
        ack = await bus.publish_until_acked(
            js,
            subjects.imported_completed(task.group),
            codec.encode(completion),
            f"argos-import.completed.{result['id']}",
        )
        await bus.publish_until_acked(
            js,
            subjects.imported_judged(task.group),
            codec.encode(msgspec.structs.replace(verdict, completion=ack.seq)),
            f"argos-import.judged.{result['id']}",
        )
        severity[task.id] = judgement.severity
        report.published += 1
    return report
