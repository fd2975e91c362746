"""The diff of two configurations, by stable task identity, and secret redaction."""

from __future__ import annotations

from pathlib import Path

import msgspec

from configuration import config
from configuration.diff import diff, fold, fold_one
from configuration.redaction import hidden, public_url, redact
from events.types import ConfigApplied, RequestData, TaskDef

OLD = """\
general: {frequency: 1m, ipv6: false}
websites:
  - domain: https://a.example.org
    paths:
      - path: /
        checks: [status-is: 200, body-contains: Welcome]
      - path: /api
        checks: [json-has: {/status: up}]
"""
# Reordered paths and checks; /api's frequency changed; body-contains removed; /new added.
NEW = """\
general: {frequency: 1m, ipv6: false}
websites:
  - domain: https://a.example.org
    frequency: 1m
    paths:
      - path: /new
        checks: [status-in: [200, 204]]
      - path: /
        checks: [status-is: 200]
  - domain: https://a.example.org
    frequency: 5m
    paths:
      - path: /api
        checks: [json-has: {/status: up}]
"""


def _parse(tmp_path: Path, name: str, body: str) -> config.Config:
    path = tmp_path / name
    path.write_text(body)
    return config.parse(path, {})


def test_diff_names_added_changed_and_removed(tmp_path):
    old, new = _parse(tmp_path, "old.yaml", OLD), _parse(tmp_path, "new.yaml", NEW)
    added, changed, removed = diff(old.tasks, new.tasks)
    assert [(t.url, t.check) for t in added] == [("https://a.example.org/new", "status-in")]
    assert [(c.task.url, c.task.check, c.fields) for c in changed] == [
        ("https://a.example.org/api", "json-has", ["frequency"])
    ]
    assert [(old.tasks[t].url, old.tasks[t].check) for t in removed] == [
        ("https://a.example.org/", "body-contains")
    ]
    assert fold([_event(old.tasks, {}), _event(new.tasks, old.tasks)]) == new.tasks


def test_a_fold_takes_a_task_from_the_preferred_copies(tmp_path):
    """The scheduler folds the log preferring its own file's tasks (they carry the secret
    values the log hides): each part's copy is not kept."""
    old, new = _parse(tmp_path, "old.yaml", OLD), _parse(tmp_path, "new.yaml", NEW)
    logged = {k: msgspec.structs.replace(t) for k, t in new.tasks.items()}
    tasks: dict[str, TaskDef] = {}
    fold_one(tasks, _event(old.tasks, {}), prefer=new.tasks)
    fold_one(tasks, _event(logged, old.tasks), prefer=new.tasks)
    assert tasks == new.tasks
    assert all(tasks[k] is new.tasks[k] for k in tasks)


def test_reordering_changes_nothing(tmp_path):
    a = _parse(tmp_path, "a.yaml", OLD)
    b = _parse(
        tmp_path,
        "b.yaml",
        OLD.replace(
            "checks: [status-is: 200, body-contains: Welcome]",
            "checks: [body-contains: Welcome, status-is: 200]",
        ),
    )
    assert diff(a.tasks, b.tasks) == ([], [], [])


def test_secrets_are_redacted(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        OLD.replace(
            "      - path: /api\n",
            (
                "      - path: /api\n        method: POST\n        request_data:\n"
                '          data: \'{"token": "${API_TOKEN}"}\'\n          is_json: true\n'
                "          headers: {Authorization: Bearer abc, X-Key: '${API_KEY}',\n"
                "                    Accept: json}\n"
            ),
        )
    )
    cfg = config.parse(path, {"API_TOKEN": "t0k3n", "API_KEY": "k3y"})
    (api,) = [t for t in cfg.tasks.values() if t.url.endswith("/api")]
    shown = redact(api, cfg.secrets)
    assert shown.request_data == RequestData(
        data=hidden('{"token": "t0k3n"}'),
        is_json=True,
        headers={
            "Authorization": hidden("Bearer abc"),
            "X-Key": hidden("k3y"),
            "Accept": hidden("json"),
        },
    )
    assert shown.id == api.id  # the identity of the real task
    assert api.request_data is not None and api.request_data.headers["X-Key"] == "k3y"
    # Every header is secret by default, whatever its name (X-Private-Token in issue 10).
    assert "k3y" not in str(redact(api, set()))


def test_url_credentials_and_env_values_are_masked_with_a_fingerprint():
    shown = public_url("http://user:pass@host/x?token=s3cr3t", {"s3cr3t"})
    assert "pass" not in shown and "s3cr3t" not in shown
    assert shown == f"http://{hidden('user:pass')}@host/x?token={hidden('s3cr3t')}"
    assert hidden("a") != hidden("b") and hidden("a").startswith("••••")
    # A website's domain is host[:port], credentials included.
    assert public_url("user:pass@host:81") == f"{hidden('user:pass')}@host:81"


def _event(new, old):

    added, changed, removed = diff(old, new)
    return ConfigApplied(
        at=0,
        revision="r",
        source="s",
        applied_by="t",
        added=added,
        changed=changed,
        removed=removed,
    )
