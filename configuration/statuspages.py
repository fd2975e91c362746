"""``status_pages``: public pages declared in the configuration, resolved to task ids.

    status_pages:
      - slug: public                 # served at /status/public (the first page also at /status)
        title: Example services
        description: Optional text under the title.
        groups:
          - name: Website
            components:
              - name: Home page
                website: https://example.org          # every check of the website
              - name: API
                website: https://example.org
                path: /api/status                      # every check of one path
              - name: Checkout
                tasks:                                 # a set: URLs, or URL and check
                  - https://example.org/cart
                  - {url: https://example.org/pay, check: status-is}

Each component must select at least one task of the same file, so a typo is an error
with its line, not an empty bar on a public page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from configuration.reader import FAILED, Reader, join, plain, text
from configuration.yamlsource import Located
from events import subjects
from events.types import TaskDef

PAGE_KEYS = {"slug", "title", "description", "groups"}
GROUP_KEYS = {"name", "components"}
COMPONENT_KEYS = {"name", "website", "path", "tasks"}


def _slug(v: Any) -> str:
    return subjects.check_token(text(v), "status page slug")


def _netloc(v: Any) -> str:
    value = text(v)
    return urlsplit(value).netloc if "://" in value else value


def _selector(r: Reader, node: Located, path: str, fn: Any) -> Any:
    """A website, path or URL that selects tasks. Read without ``Reader.convert``: a value
    written with ${ENV} would become a secret, and every task URL containing it would then
    be masked in the UI and the API, while it only names tasks already declared."""
    try:
        return fn(plain(node))
    except (ValueError, TypeError) as exc:
        r.fail(node.where, path, str(exc))
        return FAILED


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def status_pages(r: Reader, node: Located, tasks: dict[str, TaskDef]) -> list[dict[str, Any]]:
    """The pages as plain data: slug, title, description and groups of components, each
    component with the ids of its tasks and the domains they belong to."""
    pages: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, pnode in enumerate(r.items(node, "status_pages")):
        path = f"status_pages[{i}]"
        m = r.mapping(pnode, path, PAGE_KEYS, ("slug", "title", "groups"))
        slug = r.convert(m["slug"], join(path, "slug"), _slug) if "slug" in m else FAILED
        if slug is not FAILED and slug in seen:
            r.fail(m["slug"].where, join(path, "slug"), f"a second status page named {slug!r}")
        seen.add(slug)
        title = r.convert(m["title"], join(path, "title"), text) if "title" in m else FAILED
        description = (
            r.convert(m["description"], join(path, "description"), text)
            if "description" in m
            else ""
        )
        groups = []
        for gi, gnode in enumerate(
            r.items(m["groups"], join(path, "groups")) if "groups" in m else []
        ):
            gpath = f"{path}.groups[{gi}]"
            g = r.mapping(gnode, gpath, GROUP_KEYS, ("name", "components"))
            name = r.convert(g["name"], join(gpath, "name"), text) if "name" in g else FAILED
            comps = [
                _component(r, cnode, f"{gpath}.components[{ci}]", tasks)
                for ci, cnode in enumerate(
                    r.items(g["components"], join(gpath, "components")) if "components" in g else []
                )
            ]
            groups.append({"name": name, "components": comps})
        pages.append({"slug": slug, "title": title, "description": description, "groups": groups})
    return pages


def _component(r: Reader, node: Located, path: str, tasks: dict[str, TaskDef]) -> dict[str, Any]:
    m = r.mapping(node, path, COMPONENT_KEYS, ("name",))
    name = r.convert(m["name"], join(path, "name"), text) if "name" in m else FAILED
    kinds = [k for k in ("website", "tasks") if k in m]
    if len(kinds) != 1:
        r.fail(node.where, path, "a component needs either 'website' (and maybe 'path') or 'tasks'")
        return {"name": name, "tasks": [], "domains": []}
    selected: list[TaskDef] = []
    if "website" in m:
        domain = _selector(r, m["website"], join(path, "website"), _netloc)
        suffix = _selector(r, m["path"], join(path, "path"), text) if "path" in m else None
        selected = [
            t
            for t in tasks.values()
            if t.domain == domain and (suffix is None or _path_of(t.url) == suffix)
        ]
        where = m.get("path", m["website"])
        if domain is not FAILED and suffix is not FAILED and not selected:
            what = f"{domain} path {suffix}" if suffix else domain
            r.fail(where.where, path, f"no website of this file checks {what}")
    else:
        for ti, item in enumerate(r.items(m["tasks"], join(path, "tasks"))):
            ipath = f"{path}.tasks[{ti}]"
            if isinstance(item.value, dict):
                spec = r.mapping(item, ipath, {"url", "check"}, ("url",))
                url = (
                    _selector(r, spec["url"], join(ipath, "url"), text) if "url" in spec else FAILED
                )
                check = (
                    _selector(r, spec["check"], join(ipath, "check"), text)
                    if "check" in spec
                    else None
                )
            else:
                url, check = _selector(r, item, ipath, text), None
            if url is FAILED or check is FAILED:
                continue
            found = [t for t in tasks.values() if t.url == url and check in (None, t.check)]
            if not found:
                r.fail(
                    item.where,
                    ipath,
                    f"no check of this file on {url}" + (f" is {check}" if check else ""),
                )
            selected += found
    return {
        "name": name,
        "tasks": sorted({t.id for t in selected}),
        "domains": sorted({t.domain for t in selected}),
    }
