"""The agent's own host: CPU, load, memory, swap, filesystems and uptime, read with psutil.

The agent only observes; the scheduler judges the figures against the configuration's
``hosts`` thresholds, as it judges check results. Which filesystems are observed is decided
here (pseudo filesystems are never worth a figure); which are judged, by the configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import os
import socket
import time
from dataclasses import dataclass, field

import psutil
from nats.js import JetStreamContext

from events import codec, subjects
from events.hosts import MAX_DEVICE, MAX_FSTYPE, MAX_MOUNT
from events.types import MAX_FILESYSTEMS, FilesystemFigures, HostObserved
from runtime.logs import Log

log = Log("tocsin.agent.host")


@dataclass(frozen=True)
class FsFilter:
    """Which mounted filesystems to observe. By default the ones on a device (psutil's
    ``all=False``); ``include`` adds mount points (globs) of any type, such as a tmpfs;
    ``exclude`` and ``exclude_types`` remove mount points and types."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    exclude_types: tuple[str, ...] = ()

    def wanted(self, mount: str, fstype: str, physical: bool) -> bool:
        if any(fnmatch.fnmatchcase(mount, p) for p in self.exclude):
            return False
        if fstype in self.exclude_types:
            return False
        return physical or any(fnmatch.fnmatchcase(mount, p) for p in self.include)


@dataclass
class HostOptions:
    interval: float = 30.0
    filesystems: FsFilter = field(default_factory=FsFilter)


def _percent(used: float, total: float) -> float:
    return 0.0 if total <= 0 else max(0.0, min(100.0, 100.0 * used / total))


def shown(name: str) -> str:
    """A name read from the system as text an event can hold: the bytes of a mount point or a
    device that are not UTF-8 (which Python keeps as lone surrogates, and no encoder takes)
    written as ``\\xff``. Such a name once made every observation of the host unpublishable."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def unfit(mount: str, fstype: str, device: str) -> bool:
    """Whether a filesystem's names are beyond what the event contract admits: it is left out
    (and said once), never cut, since a cut mount point could name another filesystem."""
    return len(mount) > MAX_MOUNT or len(fstype) > MAX_FSTYPE or len(device) > MAX_DEVICE


def filesystems(flt: FsFilter, left_out: set[str]) -> list[FilesystemFigures]:
    """The figures of the wanted filesystems, each mount point once (the last mount on a
    point hides the earlier ones: statvfs reads the one in sight); mount points beyond the
    contract's bounds are added to ``left_out`` instead."""
    physical = {p.mountpoint for p in psutil.disk_partitions(all=False)}
    out: list[FilesystemFigures] = []
    seen: set[str] = set()
    for part in psutil.disk_partitions(all=True):
        # Matched and reported by the name as shown; statvfs is asked by the name as it is.
        mount, fstype, device = shown(part.mountpoint), shown(part.fstype), shown(part.device)
        if mount in seen or not flt.wanted(mount, fstype, part.mountpoint in physical):
            continue
        if unfit(mount, fstype, device):
            if mount[:MAX_MOUNT] not in left_out:
                log.warning(
                    "filesystem left out of host figures: its names are too long for an event",
                    mount=mount[:MAX_MOUNT],
                    limits=f"mount {MAX_MOUNT}, type {MAX_FSTYPE}, device {MAX_DEVICE}",
                )
                left_out.add(mount[:MAX_MOUNT])
            continue
        try:
            st = os.statvfs(part.mountpoint)
        except OSError:
            continue  # unmounted meanwhile, or not readable by the agent: nothing to report
        seen.add(mount)
        size = st.f_blocks * st.f_frsize
        free = st.f_bfree * st.f_frsize
        avail = st.f_bavail * st.f_frsize
        # As df: used / (used + available to users), so the blocks reserved for root count
        # as full, which is what an application writing there meets.
        used = size - free
        files, files_free = st.f_files, st.f_ffree
        out.append(
            FilesystemFigures(
                mount=mount,
                fstype=fstype,
                device=device,
                size_bytes=size,
                free_bytes=free,
                avail_bytes=avail,
                used_percent=round(_percent(used, used + avail), 2),
                files=files,
                files_free=files_free,
                inodes_percent=(
                    round(_percent(files - files_free, files), 2) if files > 0 else None
                ),
            )
        )
        if len(out) == MAX_FILESYSTEMS:
            break
    return out


def observe(agent: str, location: str, opts: HostOptions, left_out: set[str]) -> HostObserved:
    """One observation of this host (CPU use since the previous call: prime it once);
    ``left_out``: the mount points already said to be left out."""
    mem = psutil.virtual_memory()
    swap = psutil.swap_memory()
    load1, load5, load15 = psutil.getloadavg()
    return HostObserved(
        at=time.time(),
        agent=agent,
        location=location,
        hostname=shown(socket.gethostname())[:4096],
        interval=opts.interval,
        cores=psutil.cpu_count() or 1,
        cpu_percent=max(0.0, min(100.0, psutil.cpu_percent(interval=None))),
        load1=load1,
        load5=load5,
        load15=load15,
        memory_total_bytes=mem.total,
        memory_available_bytes=mem.available,
        memory_percent=_percent(mem.total - mem.available, mem.total),
        swap_total_bytes=swap.total,
        swap_free_bytes=swap.free,
        swap_percent=_percent(swap.total - swap.free, swap.total),
        boot_time=psutil.boot_time(),
        filesystems=filesystems(opts.filesystems, left_out),
    )


async def observe_forever(
    js: JetStreamContext, agent: str, location: str, opts: HostOptions, stopping: asyncio.Event
) -> None:
    """Publish an observation every ``interval`` until ``stopping``. A publish that fails
    (NATS away) is dropped: the next observation replaces it."""
    psutil.cpu_percent(interval=None)  # the first call only starts the measurement
    subject = subjects.host_observed(agent, location)
    wait = min(1.0, opts.interval)  # the first figures soon after start, then every interval
    left_out: set[str] = set()
    while not stopping.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stopping.wait(), wait)
            return
        wait = opts.interval
        try:
            event = await asyncio.to_thread(observe, agent, location, opts, left_out)
            await js.publish(
                subject,
                # Checked as the scheduler and the projector will read it: an observation they
                # refuse is said here, where it is made, not dead-lettered there.
                codec.encode_admitted(event, subject),
                headers={"Nats-Msg-Id": f"host.{agent}.{int(event.at * 1000)}"},
                timeout=5,
            )
        except Exception as exc:
            log.warning("host observation not published", error=str(exc) or type(exc).__name__)
