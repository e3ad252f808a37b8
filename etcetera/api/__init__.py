"""The async API: the one implementation behind the CLI and the sync facade."""

from ..engine.progress import ProgressCallback, ProgressEvent, TransferStats
from ..format.sharding import parse_shard
from ._common import describe_error, dumps, resolve_config, transfer_config
from .inspect import VerifyResult, ainfo, averify
from .local import RemoteDataset, acreate, adataset, alist_remote, als, apurge, aregister
from .maintenance import GcResult, agc, arm_remote
from .pull import PullResult, apull
from .push import PushResult, apush
from .watch import Watch, watch

__all__ = [
    "GcResult",
    "ProgressCallback",
    "ProgressEvent",
    "PullResult",
    "PushResult",
    "RemoteDataset",
    "TransferStats",
    "VerifyResult",
    "Watch",
    "acreate",
    "adataset",
    "agc",
    "ainfo",
    "alist_remote",
    "als",
    "apull",
    "apurge",
    "apush",
    "aregister",
    "arm_remote",
    "averify",
    "describe_error",
    "dumps",
    "parse_shard",
    "resolve_config",
    "transfer_config",
    "watch",
]
