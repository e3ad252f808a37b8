"""The async API: the one implementation behind the CLI and the sync facade."""

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
from .session import Session, session
from .status import Status, astatus
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
