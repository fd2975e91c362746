"""Host tasks as the notifier sees them: their definitions come from the ``hosts`` section.

A host task is not in the configuration file's task set (the scheduler derives it from the
host's figures), so the notifier derives what it needs from the judgement's group: the
host's domain ``host:<agent>`` (silences and routing by domain), its retries, recipients and
maintenance windows.
"""

from __future__ import annotations

from checks.hostjudge import agent_of, domain
from events.types import TaskDef
from services.notifier.settings import NotifySettings, routing_of


def host_task(s: NotifySettings, group: str, task: str) -> TaskDef | None:
    agent = agent_of(group)
    if agent is None or s.hosts is None:
        return None
    rules = s.hosts.rules(agent)
    name = domain(agent)
    if name not in s.websites:  # built once per host and settings (a reload starts afresh)
        s.websites[name] = routing_of(rules.alerting, f"hosts.machines[agent={agent}]")
    return TaskDef(
        id=task,
        group=group,
        domain=name,
        url=f"host://{agent}",
        method="HOST",
        ip_version=4,
        check="host",
        expected=None,
        frequency=1.0,
        retry_before_notification=rules.retry_before_notification,
    )
