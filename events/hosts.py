"""Host observations: what an agent sees of the machine it runs on (docs/hosts.md)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from events.fields import Event

# Every field bounded: an agent is a remote, less trusted writer, and what a decoder admits
# is what the projector folds and the web shows.
_HostToken = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,62}$")]
_HostText = Annotated[str, msgspec.Meta(max_length=4096, pattern=r"^[^\x00]*$")]
_Percent = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
_Bytes = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
_Load = Annotated[float, msgspec.Meta(ge=0.0, le=1e6)]
_HostSeconds = Annotated[float, msgspec.Meta(gt=0.0, le=86400.0)]
_Epoch = Annotated[float, msgspec.Meta(ge=0.0, le=4_102_444_800.0)]
#: Each judged filesystem is two host tasks (disk, inodes) whose definitions, and whose
#: verdicts, name its mount: at most this many filesystems, with mount points of at most
#: ``MAX_MOUNT`` characters, keep the scheduler's ``config.applied`` and ``task.judged`` of the
#: largest observation within what an event may hold (tests/test_host_events.py).
MAX_FILESYSTEMS = 128
MAX_MOUNT = 256
#: A type is a word (``ext4``, ``fuse.sshfs``); a device may be a remote path (``nfs:/srv/x``).
MAX_FSTYPE = 64
MAX_DEVICE = 1024
_Mount = Annotated[str, msgspec.Meta(max_length=MAX_MOUNT, pattern=r"^[^\x00]*$")]
_FsType = Annotated[str, msgspec.Meta(max_length=MAX_FSTYPE, pattern=r"^[^\x00]*$")]
_Device = Annotated[str, msgspec.Meta(max_length=MAX_DEVICE, pattern=r"^[^\x00]*$")]


class FilesystemFigures(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One mounted filesystem: sizes as the node exporter reports them (``avail`` is what an
    unprivileged user can still write, ``free`` includes the blocks reserved for root)."""

    mount: _Mount
    fstype: _FsType
    device: _Device
    size_bytes: _Bytes
    free_bytes: _Bytes
    avail_bytes: _Bytes
    used_percent: _Percent
    files: _Bytes = 0
    files_free: _Bytes = 0
    #: None for a filesystem without an inode table (files == 0).
    inodes_percent: _Percent | None = None


class HostObserved(Event, tag="host.observed"):
    """What an agent saw of the machine it runs on, every ``interval`` seconds.

    The agent name is at most 62 characters so that its task group ``h-<agent>`` is still
    one subject token.
    """

    agent: _HostToken
    location: _HostToken
    hostname: _HostText
    interval: _HostSeconds
    cores: Annotated[int, msgspec.Meta(ge=1, le=65536)]
    cpu_percent: _Percent
    load1: _Load
    load5: _Load
    load15: _Load
    memory_total_bytes: _Bytes
    memory_available_bytes: _Bytes
    memory_percent: _Percent
    swap_total_bytes: _Bytes
    swap_free_bytes: _Bytes
    swap_percent: _Percent
    boot_time: _Epoch
    filesystems: Annotated[list[FilesystemFigures], msgspec.Meta(max_length=MAX_FILESYSTEMS)] = []


# --- push monitors (heartbeats) ---------------------------------------------------------
