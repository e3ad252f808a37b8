"""The async API: the one implementation behind the CLI and the sync facade."""

from ..engine.progress import ProgressCallback, ProgressEvent, TransferStats
from ..format.sharding import parse_shard
from ._common import describe_error, dumps, parse_ref, resolve_config
from .files import FileListing, FileRow, acat, alist_files
from .inspect import VerifyResult, ainfo, averify
from .local import RemoteDataset, acreate, adataset, alist_remote, als, apurge, aregister
from .maintenance import GcResult, agc, arm_remote
from .pull import PullResult, apull
from .push import PushResult, apush, push_options
from .remote import RemoteVersion, aremote
from .remote_path import RemotePath, RemoteStat
from .session import Session, session
from .watch import Watch, watch

__all__ = [
    "FileListing",
    "FileRow",
    "GcResult",
    "ProgressCallback",
    "ProgressEvent",
    "PullResult",
    "PushResult",
    "RemoteDataset",
    "RemotePath",
    "RemoteStat",
    "RemoteVersion",
    "Session",
    "TransferStats",
    "VerifyResult",
    "Watch",
    "acat",
    "acreate",
    "adataset",
    "agc",
    "ainfo",
    "alist_files",
    "alist_remote",
    "als",
    "apull",
    "apurge",
    "apush",
    "aregister",
    "aremote",
    "arm_remote",
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
