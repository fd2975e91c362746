"""``tocsin heartbeat new NAME``: a fresh heartbeat monitor to paste into the configuration.

It prints the website entry (with a new secret UUID) and the crontab line
that pings it; nothing is written: the configuration file stays the truth.
"""

from __future__ import annotations

import uuid
from typing import Any

from checks import heartbeat


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "heartbeat",
        help="make a heartbeat (push) monitor: its configuration entry and ping URL",
        description="Print a configuration entry for a new heartbeat monitor, with a fresh "
        "secret UUID, and the crontab line that pings it (see docs/monitors.md).",
    )
    hsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    n = hsub.add_parser("new", help="print a new monitor's entry and ping command")
    n.add_argument("name", help="the monitor's name, such as nightly-backup")
    n.add_argument("--period", default="1d", help="expected every (default 1d)")
    n.add_argument("--cron", help="expected on this cron schedule instead of a period")
    n.add_argument("--tz", default="UTC", help="time zone of --cron (default UTC)")
    n.add_argument("--grace", default="1h", help="how late a ping may be (default 1h)")
    n.add_argument("--base-url", default="https://tocsin.example.org", help="where the web answers")


def new(args: Any) -> int:
    key = str(uuid.uuid4())
    schedule: dict[str, Any] = (
        {"cron": args.cron, "tz": args.tz} if args.cron else {"period": args.period}
    )
    try:
        heartbeat.parse({"uuid": key, **schedule, "grace": args.grace})
    except ValueError as exc:
        print(f"tocsin heartbeat new: {exc}")
        return 2
    when = f"cron: '{args.cron}', tz: {args.tz}" if args.cron else f"period: {args.period}"
    print("# Add under websites: in the configuration, then `tocsin config apply`.")
    print(f"  - domain: heartbeat://{args.name}")
    print("    checks:")
    print(f"      - heartbeat: {{uuid: {key}, {when}, grace: {args.grace}}}")
    print("# At the end of the job (its output as the run's log):")
    url = f"{args.base_url.rstrip('/')}/ping/{key}"
    print(f'#   out=$(job 2>&1); curl -fsS -m 10 --retry 5 --data-raw "$out" {url}/$?')
    print(f"#   or simply: curl -fsS -m 10 --retry 5 {url}")
    return 0
