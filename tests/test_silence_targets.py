"""``tocsin silence add`` and ``tocsin ack`` against the tasks in force in the log: a website's
URL as the configuration writes it names its domain; a domain or task that matches nothing
is refused (exit 2, "did you mean" for near names) and nothing reaches the log, instead of a
silence or acknowledgement that is listed and audited yet holds nothing back."""

from __future__ import annotations

import time
from pathlib import Path

import nats
import pytest

from configuration.config import parse
from events import codec, streams, subjects
from events.types import ConfigApplied, IncidentAcknowledged, SilenceAdded, TaskDef
from tests.clirun import tocsin
from tests.helpers import logged

LOCAL = "http://127.0.0.1:18791"
CONFIG = f"""\
general: {{frequency: 1m}}
websites:
  - domain: {LOCAL}
    paths:
      - path: /
        checks: [{{status-is: 200}}]
  - domain: https://example.org
    paths:
      - path: /health
        checks: [{{status-is: 200}}]
"""


@pytest.fixture
def applied(nats_server, tmp_path: Path) -> dict[str, str]:
    """The configuration applied with ``tocsin config apply``; its task ids by domain."""
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    done = tocsin(["config", "apply", str(path)], tmp_path, NATS_URL=nats_server.url)
    assert done.returncode == 0, done.stderr
    return {t.domain: t.id for t in parse(str(path)).tasks.values()}


#: (id, the options naming what to silence, the domain and task recorded; TASK stands for the
#: id of example.org's task).
ACCEPTED = [
    ("url-as-written", ["--domain", LOCAL], "127.0.0.1:18791", None),
    ("url-with-a-path", ["--domain", "https://example.org/health"], "example.org", None),
    ("domain", ["--domain", "example.org"], "example.org", None),
    ("domain-in-capitals", ["--domain", "EXAMPLE.org"], "example.org", None),
    ("task", ["--task", "TASK"], None, "TASK"),
    ("task-and-its-domain", ["--domain", "example.org", "--task", "TASK"], "example.org", "TASK"),
    ("everything", [], None, None),
]


@pytest.mark.parametrize(
    "what, domain, task", [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED]
)
async def test_a_silence_of_tasks_in_force_is_recorded_as_the_tasks_name_it(
    what, domain, task, applied, nats_server, tmp_path
):
    ids = {"TASK": applied["example.org"]}
    what = [ids.get(w, w) for w in what]
    done = tocsin(
        ["silence", "add", *what, "--for", "1h", "--reason", "deploy"],
        tmp_path,
        NATS_URL=nats_server.url,
    )
    assert done.returncode == 0, done.stderr
    [ev] = await logged(nats_server.url, subjects.SILENCE_ALL)
    assert isinstance(ev, SilenceAdded)
    assert (ev.domain, ev.task) == (domain, ids.get(task, task))


#: (id, the command line, what it says after ``tocsin …: ``; TASK stands for a task id of the
#: domain 127.0.0.1:18791).
REFUSED = [
    (
        "misspelt-domain",
        ["silence", "add", "--domain", "exmaple.org"],
        "no task in force has the domain 'exmaple.org' (did you mean 'example.org'?)",
    ),
    (
        "url-of-no-website",
        ["silence", "add", "--domain", "http://127.0.0.1:18792/"],
        "no task in force has the domain '127.0.0.1:18792' (did you mean '127.0.0.1:18791'?)",
    ),
    (
        "unknown-task",
        ["silence", "add", "--task", "deadbeef"],
        "no task 'deadbeef' in force",
    ),
    (
        "task-of-another-domain",
        ["silence", "add", "--domain", "example.org", "--task", "TASK"],
        "task 'TASK' is of the domain '127.0.0.1:18791', not 'example.org': "
        "a silence of both would hold nothing back",
    ),
    ("ack-unknown-task", ["ack", "nonexistenttask"], "no task 'nonexistenttask' in force"),
]


@pytest.mark.parametrize("args, said", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
async def test_a_silence_or_ack_matching_nothing_is_refused(
    args, said, applied, nats_server, tmp_path
):
    task = applied["127.0.0.1:18791"]
    args = [task if a == "TASK" else a for a in args]
    extra = ["--reason", "z"] if args[0] == "ack" else ["--for", "1h"]
    done = tocsin([*args, *extra], tmp_path, NATS_URL=nats_server.url)
    command = "ack" if args[0] == "ack" else "silence add"
    nothing = "nothing recorded" if args[0] == "ack" else "nothing silenced"
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"tocsin {command}: {said.replace('TASK', task)}; {nothing}\n"
    assert await logged(nats_server.url, subjects.SILENCE_ALL) == []
    assert await logged(nats_server.url, subjects.ACKNOWLEDGED) == []


async def test_an_ack_of_a_task_in_force_is_recorded(applied, nats_server, tmp_path):
    task = applied["example.org"]
    done = tocsin(["ack", task, "--reason", "on it"], tmp_path, NATS_URL=nats_server.url)
    assert done.returncode == 0, done.stderr
    [ev] = await logged(nats_server.url, subjects.ACKNOWLEDGED)
    assert isinstance(ev, IncidentAcknowledged) and ev.task == task


async def test_before_any_configuration_nothing_but_everything_can_be_silenced(
    nats_server, tmp_path
):
    nc = await nats.connect(nats_server.url)
    await streams.ensure(nc.jetstream(), [])
    await nc.close()
    done = tocsin(
        ["silence", "add", "--domain", "example.org", "--for", "1h"],
        tmp_path,
        NATS_URL=nats_server.url,
    )
    assert (done.returncode, done.stderr) == (
        2,
        "tocsin silence add: no configuration is in force in the log, so no task to name: "
        "`tocsin config apply FILE` first; nothing silenced\n",
    )
    done = tocsin(["silence", "add", "--for", "1h"], tmp_path, NATS_URL=nats_server.url)
    assert done.returncode == 0, done.stderr


async def test_a_host_is_silenced_once_the_scheduler_has_its_tasks(applied, nats_server, tmp_path):
    """``--domain host:web1`` (docs/hosts.md): the host's tasks are the scheduler's, on their
    own subject, published when the agent first reports."""
    args = ["silence", "add", "--domain", "host:web1", "--for", "1h"]
    refused = tocsin(args, tmp_path, NATS_URL=nats_server.url)
    assert refused.returncode == 2
    cpu = TaskDef(
        id="h-web1-cpu",
        group="h-web1",
        domain="host:web1",
        url="host://web1/cpu",
        method="HOST",
        ip_version=4,
        check="host",
        expected=None,
        frequency=60.0,
    )
    ev = ConfigApplied(
        at=time.time(), revision="r1", source="hosts:web1", applied_by="scheduler", added=[cpu]
    )
    nc = await nats.connect(nats_server.url)
    await nc.jetstream().publish(subjects.host_tasks("web1"), codec.encode(ev))
    await nc.close()
    done = tocsin(args, tmp_path, NATS_URL=nats_server.url)
    assert done.returncode == 0, done.stderr
    [silence] = await logged(nats_server.url, subjects.SILENCE_ALL)
    assert isinstance(silence, SilenceAdded) and silence.domain == "host:web1"
