"""The async API: the one implementation behind the CLI and the sync facade.

Names are imported from their modules on first use, so that a command loads only what
it runs (``etc pull`` neither the push nor the scan of a tree).
"""

import typing as _typing

if _typing.TYPE_CHECKING:
    from ..engine.progress import ProgressCallback, ProgressEvent, TransferStats
    from ..format.sharding import parse_shard
    from ._common import describe_error, dumps, parse_ref, resolve_config
    from .changes import Changes
    from .files import FileListing, FileRow, acat, alist_files
    from .history import Diff, LogEntry, adiff, alog
    from .inspect import VerifyResult, ainfo, averify
    from .local import RemoteDataset, acreate, adataset, alist_remote, als, apurge, aregister
    from .maintenance import GcResult, agc, arm_remote
    from .pull import PullResult, apull
    from .push import PushResult, apush, push_options
    from .remote import RemoteVersion, aremote
    from .remote_path import RemotePath, RemoteStat
    from .status import Status, astatus

# Eager, and last: each name is also its submodule's, which importing the submodule (as
# every command does) binds on this package; the function must win.
from .session import Session, session
from .watch import Watch, watch

__all__ = [
    "Changes",
    "Diff",
    "FileListing",
    "FileRow",
    "GcResult",
    "LogEntry",
    "ProgressCallback",
    "ProgressEvent",
    "PullResult",
    "PushResult",
    "RemoteDataset",
    "RemotePath",
    "RemoteStat",
    "RemoteVersion",
    "Session",
    "Status",
    "TransferStats",
    "VerifyResult",
    "Watch",
    "acat",
    "acreate",
    "adataset",
    "adiff",
    "agc",
    "ainfo",
    "alist_files",
    "alist_remote",
    "alog",
    "als",
    "apull",
    "apurge",
    "apush",
    "aregister",
    "aremote",
    "arm_remote",
    "astatus",
    "averify",
    "describe_error",
    "dumps",
    "parse_ref",
    "parse_shard",
    "push_options",
    "resolve_config",
    "session",
    "watch",
]


_HOMES = {
    "etcetera.engine.progress": ("ProgressCallback", "ProgressEvent", "TransferStats"),
    "etcetera.format.sharding": ("parse_shard",),
    "etcetera.api._common": ("describe_error", "dumps", "parse_ref", "resolve_config"),
    "etcetera.api.changes": ("Changes",),
    "etcetera.api.files": ("FileListing", "FileRow", "acat", "alist_files"),
    "etcetera.api.history": ("Diff", "LogEntry", "adiff", "alog"),
    "etcetera.api.inspect": ("VerifyResult", "ainfo", "averify"),
    "etcetera.api.local": (
        "RemoteDataset",
        "acreate",
        "adataset",
        "alist_remote",
        "als",
        "apurge",
        "aregister",
    ),
    "etcetera.api.maintenance": ("GcResult", "agc", "arm_remote"),
    "etcetera.api.pull": ("PullResult", "apull"),
    "etcetera.api.push": ("PushResult", "apush", "push_options"),
    "etcetera.api.remote": ("RemoteVersion", "aremote"),
    "etcetera.api.remote_path": ("RemotePath", "RemoteStat"),
    "etcetera.api.status": ("Status", "astatus"),
}
_LAZY = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> _typing.Any:
    import importlib

    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
