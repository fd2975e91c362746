"""One Argos 0.10.3 file using every key of ``argos/schemas/config.py``, each on its own line,
so that a test can write any one key with another value (or leave it out) and know the line
and column where that value stands.

``render({"general.ipv4": '"yes"'})`` is the file with ``ipv4: "yes"`` in ``general``;
``render({"general.mail": OMIT})`` is the file without ``general.mail`` nor its keys.
A key given a value replaces its whole section: ``{"general.mail": "null"}``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Leave the key (and what is under it) out of the file.
OMIT = object()

#: (key path, line with ``{}`` where the value goes, the value every case starts from).
#: A value of None: a section header, the keys below it are its value.
TEMPLATE: list[tuple[str, str, str | None]] = [
    ("general", "general:", None),
    ("general.db", "  db:", None),
    ("general.db.url", "    url: {}", '"postgresql://argos:argos@localhost/argos"'),
    ("general.db.pool_size", "    pool_size: {}", "10"),
    ("general.db.max_overflow", "    max_overflow: {}", "20"),
    ("general.env", "  env: {}", "production"),
    ("general.cookie_secret", "  cookie_secret: {}", '"s3cret"'),
    ("general.session_duration", "  session_duration: {}", '"7d"'),
    ("general.remember_me_duration", "  remember_me_duration: {}", '"1M"'),
    ("general.unauthenticated_access", "  unauthenticated_access: {}", "dashboard"),
    ("general.ldap", "  ldap:", None),
    ("general.ldap.uri", "    uri: {}", '"ldap://127.0.0.1:3389"'),
    ("general.ldap.user_tree", "    user_tree: {}", '"ou=users,dc=example,dc=org"'),
    ("general.ldap.bind_dn", "    bind_dn: {}", '"uid=reader,ou=users,dc=example,dc=org"'),
    ("general.ldap.bind_pwd", "    bind_pwd: {}", '"secr3t"'),
    ("general.ldap.user_attr", "    user_attr: {}", "uid"),
    ("general.ldap.user_filter", "    user_filter: {}", '"(!(uid=reader))"'),
    ("general.frequency", "  frequency: {}", '"5m"'),
    ("general.recheck_delay", "  recheck_delay: {}", '"30s"'),
    ("general.retry_before_notification", "  retry_before_notification: {}", "1"),
    ("general.ipv4", "  ipv4: {}", "true"),
    ("general.ipv6", "  ipv6: {}", "true"),
    ("general.root_path", "  root_path: {}", '"/argos"'),
    ("general.alerts", "  alerts:", None),
    ("general.alerts.ok", "    ok: {}", "[local]"),
    ("general.alerts.warning", "    warning: {}", "[local, mail]"),
    ("general.alerts.critical", "    critical: {}", "[local, gotify, apprise:team]"),
    ("general.alerts.unknown", "    unknown: {}", "[local]"),
    ("general.alerts.no_agent", "    no_agent: {}", "[local]"),
    ("general.mail", "  mail:", None),
    ("general.mail.mailfrom", "    mailfrom: {}", "no-reply@example.org"),
    ("general.mail.host", "    host: {}", "127.0.0.1"),
    ("general.mail.port", "    port: {}", "2525"),
    ("general.mail.ssl", "    ssl: {}", "false"),
    ("general.mail.starttls", "    starttls: {}", "true"),
    ("general.mail.auth", "    auth:", None),
    ("general.mail.auth.login", "      login: {}", "foo"),
    ("general.mail.auth.password", "      password: {}", "bar"),
    ("general.mail.addresses", "    addresses: {}", "[ops@example.org]"),
    ("general.gotify", "  gotify:", None),
    ("general.gotify[0]", "    -", None),
    ("general.gotify[0].url", "      url: {}", "https://gotify.example.org"),
    ("general.gotify[0].tokens", "      tokens: {}", "[abc, def]"),
    ("general.apprise", "  apprise:", None),
    ("general.apprise.team", "    team: {}", '["json://localhost:1/team"]'),
    ("service", "service:", None),
    ("service.secrets", "  secrets: {}", '["tok-1"]'),
    ("ssl", "ssl:", None),
    ("ssl.thresholds", "  thresholds:", None),
    ("ssl.thresholds[0]", "    - {}", '"1d": critical'),
    ("ssl.thresholds[1]", "    - {}", '"5d": warning'),
    ("recurring_tasks", "recurring_tasks:", None),
    ("recurring_tasks.max_results_age", "  max_results_age: {}", '"1d"'),
    ("recurring_tasks.max_lock_seconds", "  max_lock_seconds: {}", "100"),
    ("recurring_tasks.time_without_agent", "  time_without_agent: {}", "5"),
    ("websites", "websites:", None),
    ("websites[0]", "  -", None),
    ("websites[0].domain", "    domain: {}", '"https://example.org"'),
    ("websites[0].ipv4", "    ipv4: {}", "true"),
    ("websites[0].ipv6", "    ipv6: {}", "true"),
    ("websites[0].frequency", "    frequency: {}", '"1d"'),
    ("websites[0].recheck_delay", "    recheck_delay: {}", '"5m"'),
    ("websites[0].retry_before_notification", "    retry_before_notification: {}", "3"),
    ("websites[0].add_alerts_recipients", "    add_alerts_recipients: {}", '["apprise:team"]'),
    ("websites[0].overwrite_alerts_recipients", "    overwrite_alerts_recipients: {}", "[local]"),
    ("websites[0].paths", "    paths:", None),
    ("websites[0].paths[0]", "      -", None),
    ("websites[0].paths[0].path", "        path: {}", '"/"'),
    ("websites[0].paths[0].method", "        method: {}", "POST"),
    ("websites[0].paths[0].request_data", "        request_data:", None),
    ("websites[0].paths[0].request_data.data", "          data: {}", "{login: admin}"),
    ("websites[0].paths[0].request_data.is_json", "          is_json: {}", "true"),
    ("websites[0].paths[0].request_data.headers", "          headers: {}", '{X-A: "1"}'),
    ("websites[0].paths[0].checks", "        checks:", None),
    ("websites[0].paths[0].checks[0]", "          - {}", "status-is: 200"),
]
KEYS = {key for key, _, _ in TEMPLATE}


@dataclass(frozen=True)
class Rendered:
    text: str
    #: key path → (line, column) of the value given to it, or of its line if it has none.
    places: dict[str, tuple[int, int]]


def _under(key: str, section: str) -> bool:
    return key.startswith(section) and key[len(section)] in ".["


def render(values: dict[str, object]) -> Rendered:
    unknown = set(values) - KEYS
    assert not unknown, f"not in the template: {unknown}"
    lines: list[str] = []
    places = {}
    defaults = {key: default for key, _, default in TEMPLATE}
    # A section given a value (or left out) loses the keys under it.
    replaced = [k for k in values if values[k] is OMIT or defaults[k] is None]
    for key, line, default in TEMPLATE:
        if any(len(key) > len(s) and _under(key, s) for s in replaced):
            continue
        value = values.get(key, default)
        if value is OMIT:
            continue
        if key in values and default is None:
            line += " {}"
        head = line.split("{}")[0] if "{}" in line else line[: len(line) - len(line.lstrip())]
        places[key] = (len(lines) + 1, len(head) + 1)
        lines.append(line.format(value) if "{}" in line else line)
    return Rendered("\n".join(lines) + "\n", places)
