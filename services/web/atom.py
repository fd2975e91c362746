"""The Atom feed (RFC 4287) of a status page's incidents: one entry per update."""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.sax.saxutils import escape as xml_escape


def _rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def feed(page: dict[str, Any], incidents: list[dict[str, Any]], base: str) -> str:
    """An Atom 1.0 feed (RFC 4287): one entry per incident update, newest first."""
    url = f"{base}/status/{page['slug']}"
    entries = sorted(
        ((i, u) for i in incidents for u in i["updates"]), key=lambda x: x[1]["seq"], reverse=True
    )[:50]
    updated = entries[0][1]["at"] if entries else dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<id>{xml_escape(url)}</id>",
        f"<title>{xml_escape(page['title'])}: incidents</title>",
        f"<updated>{_rfc3339(updated)}</updated>",
        f'<link rel="alternate" type="text/html" href="{xml_escape(url)}"/>',
        f'<link rel="self" type="application/atom+xml" href="{xml_escape(url)}/feed.atom"/>',
        "<author><name>Tocsin</name></author>",
    ]
    for inc, u in entries:
        title = f"[{u['phase']}] {inc['title']}"
        out += [
            "<entry>",
            f"<id>urn:tocsin:status:{xml_escape(page['slug'])}:{u['seq']}</id>",
            f"<title>{xml_escape(title)}</title>",
            f"<updated>{_rfc3339(u['at'])}</updated>",
            f'<link rel="alternate" type="text/html" href="{xml_escape(url)}#incident-'
            f'{xml_escape(inc["id"])}"/>',
            f"<author><name>{xml_escape(u['by'])}</name></author>",
            f'<content type="text">{xml_escape(u["message"])}</content>',
            "</entry>",
        ]
    out.append("</feed>")
    return "\n".join(out) + "\n"
