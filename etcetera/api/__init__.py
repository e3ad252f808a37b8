"""The async API: the one implementation behind the CLI and the sync facade."""

from ..engine.progress import ProgressCallback, ProgressEvent, TransferStats
from ._common import describe_error, dumps, resolve_config, transfer_config
from .local import RemoteDataset, acreate, adataset, alist_remote, als, apurge, aregister
from .pull import PullResult, apull
from .push import PushResult, apush

__all__ = [
    "ProgressCallback",
    "ProgressEvent",
    "PullResult",
    "PushResult",
    "RemoteDataset",
    "TransferStats",
    "acreate",
    "adataset",
    "alist_remote",
    "als",
    "apull",
    "apurge",
    "apush",
    "aregister",
    "describe_error",
    "dumps",
    "resolve_config",
    "transfer_config",
]
