"""``tocsin heartbeat new NAME``: a fresh heartbeat monitor to paste into the configuration.

It prints the website entry (with a new secret UUID) and the crontab line
that pings it; nothing is written: the configuration file stays the truth.
"""

from __future__ import annotations

import json
import re
import unicodedata
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
    # No defaults in argparse for --period and --tz: an option given in vain is refused,
    # not dropped, and a default would hide whether it was given.
    n.add_argument("--period", help="expected every (default 1d)")
    n.add_argument("--cron", help="expected on this cron schedule instead of a period")
    n.add_argument("--tz", help="time zone of --cron (default UTC)")
    n.add_argument("--grace", default="1h", help="how late a ping may be (default 1h)")
    n.add_argument("--base-url", default="https://tocsin.example.org", help="where the web answers")


def name_of(typed: str) -> str:
    """The heartbeat's name as its URL can hold it: letters and digits of any script and
    ``-_.``; anything else (a space, ``/``, ``:``, ``#``, a quote) would end the URL or the
    YAML scalar, so a run of it becomes one hyphen. NFKC first so that no character the URL
    parser normalises into a delimiter (``℀`` into ``a/c``) is kept."""
    normal = unicodedata.normalize("NFKC", typed)
    kept = "".join(c if c.isalnum() or c in "-_." else " " for c in normal)
    return re.sub(r"\s+", "-", kept.strip())


def new(args: Any) -> int:
    key = str(uuid.uuid4())
    if args.tz is not None and args.cron is None:
        print("tocsin heartbeat new: --tz goes with --cron (a period counts from the last ping)")
        return 2
    if args.period is not None and args.cron is not None:
        print("tocsin heartbeat new: give either --period or --cron, not both")
        return 2
    name = name_of(args.name)
    if not any(c.isalnum() for c in name):
        print(f"tocsin heartbeat new: the name must hold a letter or a digit, got {args.name!r}")
        return 2
    schedule: dict[str, Any] = (
        {"cron": args.cron, "tz": args.tz or "UTC"}
        if args.cron
        else {"period": args.period or "1d"}
    )
    try:
        heartbeat.parse({"uuid": key, **schedule, "grace": args.grace})
    except ValueError as exc:
        print(f"tocsin heartbeat new: {exc}")
        return 2
    # Values as JSON strings, which YAML reads as they are, whatever they hold.
    fields = ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in schedule.items())
    print("# Add under websites: in the configuration, then `tocsin config apply`.")
    if name != args.name:
        print(f"# {args.name!r} is written heartbeat://{name}: a name holds letters, digits, -_.")
    print(f"  - domain: heartbeat://{name}")  # plain YAML: the name holds no delimiter
    print("    checks:")
    grace = json.dumps(args.grace, ensure_ascii=False)
    print(f"      - heartbeat: {{uuid: {key}, {fields}, grace: {grace}}}")
    print("# At the end of the job (its output as the run's log):")
    url = f"{args.base_url.rstrip('/')}/ping/{key}"
    print(f'#   out=$(job 2>&1); curl -fsS -m 10 --retry 5 --data-raw "$out" {url}/$?')
    print(f"#   or simply: curl -fsS -m 10 --retry 5 {url}")
    return 0
