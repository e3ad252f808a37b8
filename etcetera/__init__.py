"""etcetera: dataset sharing via cloud storage (S3, Google Cloud Storage).

Sync functions (``dataset``, ``pull``, ``push`` ...) wrap their async twins
(``adataset``, ``apull``, ``apush`` ...); both work inside a running event loop.
"""

from ._version import __version__
from .api import (
    PullResult,
    PushResult,
    RemoteDataset,
    acreate,
    adataset,
    als,
    apull,
    apurge,
    apush,
    aregister,
)
from .dataset import Dataset
from .engine.progress import ProgressEvent, TransferStats
from .errors import (
    AccessDeniedError,
    BackendError,
    ConcurrentPushError,
    ConfigError,
    DatasetExistsError,
    DatasetNotFoundError,
    EtceteraError,
    IntegrityError,
    InvalidNameError,
    LocalIOError,
    ManifestError,
    NotADatasetError,
    ObjectNotFoundError,
    PartitionNotFoundError,
    PreconditionFailedError,
    RepositoryNotFoundError,
    ThrottledError,
    TransientError,
)
from .settings import Config
from .sync import create, dataset, ls, pull, purge, push, register

__all__ = [
    "AccessDeniedError",
    "BackendError",
    "ConcurrentPushError",
    "Config",
    "ConfigError",
    "Dataset",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "EtceteraError",
    "IntegrityError",
    "InvalidNameError",
    "LocalIOError",
    "ManifestError",
    "NotADatasetError",
    "ObjectNotFoundError",
    "PartitionNotFoundError",
    "PreconditionFailedError",
    "ProgressEvent",
    "PullResult",
    "PushResult",
    "RemoteDataset",
    "RepositoryNotFoundError",
    "ThrottledError",
    "TransferStats",
    "TransientError",
    "__version__",
    "acreate",
    "adataset",
    "als",
    "apull",
    "apurge",
    "apush",
    "aregister",
    "create",
    "dataset",
    "ls",
    "pull",
    "purge",
    "push",
    "register",
]
