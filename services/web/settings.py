"""What the web service needs to know: access rules, session lifetimes, the cookie secret.

Read from the Argos configuration's ``general`` section (the file named by
TOCSIN_CONFIG) so an Argos user keeps their ``unauthenticated_access`` and
session settings; environment variables override the file, for containers. The
websites' ``depends_on`` is read too, so a task page can say what blocks it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from configuration.config import parse
from configuration.maintenance import Window, parse_windows
from configuration.yamlsource import Located, load
from events.values import bounded_duration
from services.web.ldapauth import LdapSettings

Access = Literal["", "dashboard", "all"]


@dataclass
class WebSettings:
    #: "" (log in for everything), "dashboard" (the dashboard is public) or "all" (every
    #: page is public), as Argos's ``unauthenticated_access``.
    unauthenticated_access: Access = ""
    cookie_secret: str | None = None
    session_duration: float = 3600.0
    remember_me_duration: float = 30 * 86400.0
    #: Domains whose badges are public (TOCSIN_STATUS_PAGE); ["*"] for every domain. The
    #: domains of the configured status pages are public too.
    status_domains: list[str] = field(default_factory=list)
    #: ``status_pages`` of the configuration (configuration/statuspages.py).
    status_pages: list[dict[str, Any]] = field(default_factory=list)
    #: Whether status pages offer e-mail subscriptions (the notifier mails through
    #: ``general.mail``; without it there is only the Atom feed).
    mail_subscriptions: bool = False
    #: Maintenance windows announced on status pages: "" for general, else by domain.
    maintenance: dict[str, list[Window]] = field(default_factory=dict)
    #: Send cookies with ``Secure`` even over plain HTTP (TOCSIN_SECURE_COOKIES); otherwise
    #: they get it when the request came over HTTPS, as seen directly or via a trusted proxy.
    secure_cookies: bool = False
    #: Addresses of the reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed
    #: (TOCSIN_TRUSTED_PROXIES, comma-separated; ``*`` for any). None by default: a local
    #: client could otherwise claim any address and escape the login rate limit.
    trusted_proxies: list[str] = field(default_factory=list)
    nats_url: str | None = None
    login_attempts: int = 5
    login_window: float = 300.0
    #: ``general.root_path``: the prefix a reverse proxy serves the site under ("" for none).
    root_path: str = ""
    #: ``general.ldap``: when set, people log in against the directory, as in Argos.
    ldap: LdapSettings | None = None
    #: Each website's ``depends_on`` entries, by domain (host[:port]), for "blocked by".
    depends: dict[str, list[str]] = field(default_factory=dict)


def _root(path: str) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        v = v.value if isinstance(v, Located) else v
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v

    # A file named but unreadable raises ConfigError (file:line:col): serving on without it
    # would silently drop its root_path, LDAP and cookie secret.
    root = plain(load(path))
    return root if isinstance(root, dict) else {}


def _depends(root: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in root.get("websites") or []:
        # ``!include dir/*.yaml`` puts a list of websites where one would be.
        for site in item if isinstance(item, list) else [item]:
            if isinstance(site, dict) and isinstance(site.get("depends_on"), list):
                domain = str(site.get("domain", ""))
                out[urlsplit(domain).netloc or domain] = [str(e) for e in site["depends_on"]]
    return out


def load_settings(config_path: str | None = None, env: dict[str, str] | None = None) -> WebSettings:
    """The settings from the file (``config_path`` or TOCSIN_CONFIG) and the environment; with
    no file named, the environment alone. Raises ConfigError when the named file does not read
    or is refused."""
    env = dict(os.environ) if env is None else env
    s = WebSettings()
    path = config_path or env.get("TOCSIN_CONFIG")
    raw = _root(path) if path else {}
    found = raw.get("general")
    general: dict[str, Any] = found if isinstance(found, dict) else {}
    s.depends = _depends(raw)
    access = env.get("TOCSIN_UNAUTHENTICATED_ACCESS", general.get("unauthenticated_access"))
    if access == "dashboard":
        s.unauthenticated_access = "dashboard"
    elif access == "all":
        s.unauthenticated_access = "all"
    elif access not in (None, "", "none"):
        raise ValueError(f"unauthenticated_access must be dashboard or all, not {access!r}")
    s.cookie_secret = env.get("TOCSIN_COOKIE_SECRET") or general.get("cookie_secret") or None
    for key in ("session_duration", "remember_me_duration"):
        value = env.get(f"TOCSIN_{key.upper()}", general.get(key))
        if value is not None:
            # A bare number is minutes, as Argos before 0.10 wrote it.
            setattr(s, key, bounded_duration(value))
    domains = env.get("TOCSIN_STATUS_PAGE", "")
    s.status_domains = [d.strip() for d in domains.split(",") if d.strip()]
    if path:
        _status_pages(s, path, env)
    s.secure_cookies = env.get("TOCSIN_SECURE_COOKIES", "") in ("1", "true", "yes")
    proxies = env.get("TOCSIN_TRUSTED_PROXIES", "")
    s.trusted_proxies = [p.strip() for p in proxies.split(",") if p.strip()]
    s.nats_url = env.get("NATS_URL") or None
    s.ldap = LdapSettings.from_general(general.get("ldap"))
    root = env.get("TOCSIN_ROOT_PATH", general.get("root_path")) or ""
    if root and not str(root).startswith("/"):
        raise ValueError(f"root_path must start with '/', not {root!r}")
    s.root_path = str(root).rstrip("/")
    return s


def follow(s: WebSettings, logged: dict[str, Any]) -> None:
    """Take what the web shows of the settings in force in the log (``config.applied``,
    secrets masked) into ``s``: status pages, maintenance windows, dependencies. How this
    process serves (who may see what, sessions, its cookie secret, LDAP, root path, proxies)
    stays what it started with: its file and environment, read at start."""
    general = logged.get("general") or {}
    websites: dict[str, dict[str, Any]] = logged.get("websites") or {}
    maintenance = {"": parse_windows(general.get("maintenance"))}
    for domain, extra in websites.items():
        if extra.get("maintenance"):
            maintenance[domain] = parse_windows(extra["maintenance"])
    depends = {d: list(e["depends_on"]) for d, e in websites.items() if e.get("depends_on")}
    # All or nothing: settings that do not read (raised above) leave the last ones whole.
    s.status_pages = list(logged.get("status_pages") or [])
    s.mail_subscriptions = bool(general.get("mail"))
    s.maintenance, s.depends = maintenance, depends


def server_options(settings: WebSettings) -> dict[str, Any]:
    """uvicorn's options that follow the settings: proxy headers only from trusted proxies."""
    return {
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": ",".join(settings.trusted_proxies) or "",
    }


def _status_pages(s: WebSettings, path: str, env: dict[str, str]) -> None:
    """Status pages and maintenance windows from the whole configuration, validated as the
    scheduler validates it (a page names tasks, which only a full parse resolves)."""

    # Refused as the scheduler refuses it (ConfigError, file:line:col), not served without.
    config = parse(path, env)
    s.status_pages = config.status_pages
    s.mail_subscriptions = bool(config.general.get("mail"))
    s.maintenance = {"": parse_windows(config.general.get("maintenance"))}
    for domain, extra in config.websites.items():
        if extra.get("maintenance"):
            s.maintenance[domain] = parse_windows(extra["maintenance"])
