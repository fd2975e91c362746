"""The hosts' figures for /metrics, named as the Prometheus node exporter names them where it
has a counterpart (``node_load1``, ``node_filesystem_avail_bytes``, …), each labelled with
the reporting ``agent`` (``instance`` is the scraper's own label for the web service).
Figures the node exporter has no gauge for (it exports CPU seconds, not a percentage) are
``tocsin_host_*``. Samples of a host silent for longer than two intervals are left out,
as a node exporter that is down exports nothing.

``families`` is pure: rows of ``/api/hosts`` in, metric families out, so the exposition
(prometheus_client's) stays apart from the names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily


@dataclass
class Family:
    name: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)


_HOST = (
    ("node_load1", "1-minute load average", "load1"),
    ("node_load5", "5-minute load average", "load5"),
    ("node_load15", "15-minute load average", "load15"),
    # Not the node exporter's camelCase node_memory_MemTotal_bytes…: promtool's lint refuses
    # those (exit 3), and a scrape checked by it must pass.
    ("tocsin_host_memory_total_bytes", "Memory size in bytes", "memory_total"),
    ("tocsin_host_memory_available_bytes", "Memory available in bytes", "memory_available"),
    ("tocsin_host_swap_total_bytes", "Swap size in bytes", "swap_total"),
    ("tocsin_host_swap_free_bytes", "Swap free in bytes", "swap_free"),
    ("tocsin_host_cpu_busy_percent", "CPU busy over the agent's last interval", "cpu_percent"),
    ("tocsin_host_cpus", "Logical CPUs of the host", "cores"),
)
_FS = (
    ("node_filesystem_size_bytes", "Filesystem size in bytes", "size_bytes"),
    ("node_filesystem_free_bytes", "Filesystem free space in bytes", "free_bytes"),
    ("node_filesystem_avail_bytes", "Filesystem space available to non-root users", "avail_bytes"),
    ("node_filesystem_files", "Filesystem total file nodes", "files"),
    ("node_filesystem_files_free", "Filesystem free file nodes", "files_free"),
)


def families(hosts: list[dict[str, Any]]) -> list[Family]:
    live = [h for h in hosts if (h["silent_for"] or 0) <= 2 * h["interval_s"]]
    out = [Family(name, help_) for name, help_, _ in _HOST]
    for fam, (_, _, key) in zip(out, _HOST, strict=True):
        fam.samples = [({"agent": h["agent"]}, float(h[key])) for h in live]
    boot = Family("node_boot_time_seconds", "Node boot time, in unixtime")
    boot.samples = [({"agent": h["agent"]}, h["boot_time"].timestamp()) for h in live]
    out.append(boot)
    for name, help_, key in _FS:
        fam = Family(name, help_)
        for h in live:
            for fs in h["filesystems"]:
                labels = {
                    "agent": h["agent"],
                    "device": fs["device"],
                    "fstype": fs["fstype"],
                    "mountpoint": fs["mount"],
                }
                fam.samples.append((labels, float(fs.get(key, 0))))
        out.append(fam)
    return out


def gauges(fams: list[Family]) -> list[GaugeMetricFamily]:
    """The families as prometheus_client gauges (its exposition escapes the labels)."""
    out = []
    for f in fams:
        g = GaugeMetricFamily(f.name, f.help, labels=sorted({k for s, _ in f.samples for k in s}))
        for labels, value in f.samples:
            g.add_metric([labels[k] for k in sorted(labels)], value)
        out.append(g)
    return out
