"""``tocsin incident …``: operators' incidents on status pages, from a terminal.

The CLI publishes the same ``status.incident`` events as the API and the form, straight
to the log (as ``tocsin silence`` does), so it works while the web service is down.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from typing import Any

from configuration.inforce import who
from events import codec, subjects
from events.types import StatusIncidentPosted
from runtime import bus, cliopts

PHASES = ("investigating", "identified", "monitoring", "resolved")


def register(sub: Any) -> dict[str, Any]:
    p = sub.add_parser(
        "incident",
        help="open and update incidents on status pages",
        description="Incidents written by operators, shown on a status page and its feed, "
        "mailed to its subscribers.",
    )
    isub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    o = isub.add_parser("open", help="open an incident; prints its id")
    o.add_argument("page", help="the status page's slug")
    o.add_argument("--title", required=True)
    o.add_argument("--message", required=True)
    o.add_argument("--phase", choices=PHASES[:-1], default="investigating")
    o.add_argument(
        "--component", action="append", default=[], help="an affected component (repeatable)"
    )
    cliopts.nats(o)
    u = isub.add_parser("update", help="post an update (phase resolved closes it)")
    u.add_argument("page")
    u.add_argument("id", help="the incident's id, as printed by open")
    u.add_argument("--phase", choices=PHASES, required=True)
    u.add_argument("--message", required=True)
    cliopts.nats(u)
    return {"incident": cmd_incident}


def cmd_incident(args: argparse.Namespace) -> int:
    try:
        subjects.check_token(args.page, "status page slug")
        return _incident(args)
    except (ValueError, codec.DecodeError) as exc:  # DecodeError: the log would refuse it
        print(f"tocsin incident: {exc}", file=sys.stderr)
        return 2


def _incident(args: argparse.Namespace) -> int:
    if args.action == "open":
        iid = uuid.uuid4().hex[:12]
        asyncio.run(
            publish(
                args.nats_url,
                StatusIncidentPosted(
                    at=time.time(),
                    id=iid,
                    page=args.page,
                    phase=args.phase,
                    message=args.message,
                    by=who(),
                    title=args.title,
                    components=args.component,
                ),
            )
        )
        print(iid)
        return 0
    if args.id not in asyncio.run(incident_ids(args.nats_url, args.page)):
        print(f"tocsin incident: no incident {args.id} on page {args.page}", file=sys.stderr)
        return 1
    asyncio.run(
        publish(
            args.nats_url,
            StatusIncidentPosted(
                at=time.time(),
                id=args.id,
                page=args.page,
                phase=args.phase,
                message=args.message,
                by=who(),
            ),
        )
    )
    print(f"incident {args.id}: {args.phase}")
    return 0


async def publish(nats_url: str, ev: StatusIncidentPosted) -> None:
    # Checked first, as the web checks what it is given: text past its bound, a component
    # named twice, is refused here rather than dead-lettered by every reader.
    subject = subjects.status("incident", ev.page)
    data = codec.encode_admitted(ev, subject)
    async with bus.oneshot(nats_url, "tocsin-incident") as nc:
        await nc.jetstream().publish(
            subject,
            data,
            headers={"Nats-Msg-Id": f"status.incident.{uuid.uuid4()}"},
        )


async def incident_ids(nats_url: str, page: str) -> set[str]:
    """Ids of the page's incidents, from the log."""
    found: set[str] = set()
    async with bus.oneshot(nats_url, "tocsin-incident") as nc:
        async for msg in bus.replay(nc.jetstream(), subjects.status("incident", page)):
            try:
                ev = codec.decode(msg.data, msg.subject)
            except codec.DecodeError:
                continue
            if isinstance(ev, StatusIncidentPosted):
                found.add(ev.id)
    return found
