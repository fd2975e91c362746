"""A website, a check or a location declared more than once: Argos 0.10.3 accepts a domain in
several entries, each entry's tasks with that entry's settings, and Tocsin reads such a file
as Argos does (Argos itself is the oracle), losing nothing: a website's own keys given by one
entry hold for the whole website, two entries contradicting each other are refused at the
second place naming the first, a check declared again as it was is checked once, with a
warning."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from configuration import config
from services.notifier import settings as notify
from services.notifier.routing import channels_for
from tests.argos_support import argos_tasks
from tests.test_argos_config import _file, argos_set, tocsin_set

#: Tocsin-only settings of the tests: a webhook channel, a second location.
GENERAL = """\
general:
  frequency: 5m
  alerts: {ok: [local], warning: [local], critical: [local], unknown: [local]}
  webhooks:
    teama: {url: "https://hooks.example.net/a", secret: "0123456789abcdef0123456789abcdef"}
websites:
"""


def _site(domain: str, body: str) -> str:
    return f"  - domain: {domain}\n" + textwrap.indent(textwrap.dedent(body), "    ")


def _parse(tmp_path: Path, *sites: str) -> config.Config:
    path = tmp_path / "c.yaml"
    path.write_text(GENERAL + "".join(sites))
    return config.parse(path)


ROOT = "paths: [{path: /, checks: [status-is: 200]}]\n"
SHOP = "paths: [{path: /shop, checks: [status-is: 200]}]\n"
TEAM_A = "overwrite_alerts_recipients: {critical: ['webhook:teama']}\n"


def test_a_second_entry_keeps_the_first_ones_recipients(tmp_path: Path):
    """The issue's file: team A's recipients on the first entry were dropped by the second."""
    cfg = _parse(
        tmp_path, _site("https://example.org", TEAM_A + ROOT), _site("https://example.org", SHOP)
    )
    s = notify.from_config(cfg)
    assert [t.channel for t in channels_for(s, "example.org", "critical")] == ["webhook:teama"]
    assert {t.url for t in cfg.tasks.values()} == {
        "https://example.org/",
        "https://example.org/shop",
    }
    (warning,) = cfg.warnings
    assert re.search(r"c\.yaml:\d+:\d+: websites\[1\]: warning: example\.org is also", str(warning))
    assert "overwrite_alerts_recipients at " in str(warning) and "websites[0]" in str(warning)


@pytest.mark.parametrize(
    ("first", "second", "said"),
    [
        pytest.param(
            "frequency: 5m\n" + ROOT,
            "frequency: 30s\n" + ROOT,
            "frequency 300.0 there, 30.0 here",
            id="same-check-another-frequency",
        ),
        pytest.param(
            ROOT,
            "timeout: 3s\n" + ROOT,
            "timeout 60.0 there, 3.0 here",
            id="same-check-another-timeout",
        ),
        pytest.param(
            TEAM_A + ROOT,
            "overwrite_alerts_recipients: {critical: [local]}\n" + SHOP,
            "another overwrite_alerts_recipients than at",
            id="recipients",
        ),
        pytest.param(
            "maintenance: [{start: '2025-01-01 00:00', duration: 1h}]\n" + ROOT,
            "maintenance: [{start: '2025-02-01 00:00', duration: 1h}]\n" + SHOP,
            "another maintenance than at",
            id="maintenance",
        ),
        pytest.param(
            "quorum: 1\nlocations: [eu, us]\n" + ROOT,
            "quorum: 2\nlocations: [eu, us]\n" + SHOP,
            "another quorum than at",
            id="quorum",
        ),
        pytest.param(
            "depends_on: [db.example.org]\n" + ROOT,
            "depends_on: [cache.example.org]\n" + SHOP,
            "another depends_on than at",
            id="depends-on",
        ),
    ],
)
def test_two_entries_of_one_website_contradicting_each_other_are_refused(
    tmp_path: Path, first: str, second: str, said: str
):
    others = _site("https://db.example.org", ROOT) + _site("https://cache.example.org", ROOT)
    with pytest.raises(config.ConfigError) as err:
        _parse(
            tmp_path,
            others,
            _site("https://example.org", first),
            _site("https://example.org", second),
        )
    text = str(err.value)
    assert said in text
    # At the second entry, naming the place of the first.
    assert re.search(
        r"c\.yaml:\d+:\d+: websites\[3\]\S*: .* at \S+c\.yaml:\d+:\d+ \(websites\[2\]", text
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("https://example.org", "http://example.org", id="http-and-https"),
        pytest.param("https://example.org", "https://example.org", id="same-url"),
    ],
)
def test_two_entries_both_giving_different_recipients_are_one_website(
    tmp_path: Path, first: str, second: str
):
    """Alerts, silences and maintenance go by website (host and port): http:// and https://
    of one host are one website there, whose recipients two entries cannot both set."""
    with pytest.raises(config.ConfigError, match="one website has one add_alerts_recipients"):
        _parse(
            tmp_path,
            _site(first, "add_alerts_recipients: {critical: ['webhook:teama']}\n" + ROOT),
            _site(second, "add_alerts_recipients: {critical: [local]}\n" + SHOP),
        )


def test_a_check_declared_again_as_it_was_is_checked_once_with_a_warning(tmp_path: Path):
    cfg = _parse(
        tmp_path,
        _site(
            "https://example.org", "paths: [{path: /, checks: [status-is: 200, status-is: 200]}]\n"
        ),
        _site("https://example.org", TEAM_A + ROOT),
    )
    assert len(cfg.tasks) == 2  # IPv4 and IPv6
    repeated = [str(w) for w in cfg.warnings if "checked once" in str(w)]
    assert [re.sub(r".*: (websites\S+): .*", r"\1", w) for w in repeated] == [
        "websites[0].paths[0].checks[1]",
        "websites[1].paths[0].checks[0]",
    ]


def test_a_location_listed_twice_is_refused(tmp_path: Path):
    """It was asked twice, and counted twice towards the quorum."""
    with pytest.raises(
        config.ConfigError, match=r"websites\[0\]\.locations: location 'eu' is listed twice"
    ):
        _parse(tmp_path, _site("https://example.org", "locations: [eu, us, eu]\n" + ROOT))


def test_a_request_group_too_large_for_an_event_is_refused(tmp_path: Path):
    """Thirty long ``body-contains`` on one path: its request (272 kB) was refused by every
    agent, at every run, while ``config check`` said the file was valid."""
    checks = "".join(f"          - body-contains: '{i:03d}{'x' * 9000}'\n" for i in range(30))
    site = _site("https://example.org", "paths:\n  - path: /\n    checks:\n") + checks
    with pytest.raises(config.ConfigError) as err:
        _parse(tmp_path, site)
    assert re.search(
        r"c\.yaml:\d+:\d+: websites\[0\]\.paths\[0\]\.checks\[0\]: the request of "
        r"https://example\.org/ with its 30 checks would be refused by the agents: .*exceeds",
        str(err.value),
    )


#: Files Argos 0.10.3 accepts with a domain in several entries, as Tocsin must read them.
ARGOS_REPEATS = {
    "paths-at-two-frequencies": """\
websites:
  - domain: "https://example.org"
    paths: [{path: "/", checks: [status-is: 200]}]
  - domain: "https://example.org"
    frequency: "30s"
    paths: [{path: "/shop", checks: [status-is: 200]}]
""",
    "http-and-https-at-two-frequencies": """\
websites:
  - domain: "http://example.org"
    frequency: "1h"
    recheck_delay: "5m"
    paths: [{path: "/", checks: [status-is: 301]}]
  - domain: "https://example.org"
    paths: [{path: "/", checks: [status-is: 200]}]
""",
    "a-check-repeated-as-it-was": """\
websites:
  - domain: "https://example.org"
    paths:
      - {path: "/", checks: [status-is: 200, status-is: 200]}
      - {path: "/", checks: [body-contains: "ok"]}
  - domain: "https://example.org"
    paths: [{path: "/", checks: [status-is: 200]}]
""",
}


def test_repeated_websites_make_the_tasks_argos_makes(tmp_path: Path):
    files = {}
    for name, websites in ARGOS_REPEATS.items():
        files[name] = tmp_path / f"{name}.yaml"
        files[name].write_text(_file(websites))
    argos = argos_tasks(list(files.values()))
    for name, path in files.items():
        assert tocsin_set(config.parse(path)) == argos_set(argos[str(path)]["tasks"]), name
