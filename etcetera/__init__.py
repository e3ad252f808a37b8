"""etcetera: dataset sharing via cloud storage (S3, Google Cloud Storage).

Sync functions (``dataset``, ``pull``, ``push`` ...) wrap their async twins
(``adataset``, ``apull``, ``apush`` ...); both work inside a running event loop.
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
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
    from .model import Dataset
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


# Names are imported on first use, so that `etc --version` and `import etcetera` stay
# fast (pydantic-settings and the engine load only when something needs them).
_LAZY = {
    "AccessDeniedError": "etcetera.errors",
    "BackendError": "etcetera.errors",
    "ConcurrentPushError": "etcetera.errors",
    "Config": "etcetera.settings",
    "ConfigError": "etcetera.errors",
    "Dataset": "etcetera.model",
    "DatasetExistsError": "etcetera.errors",
    "DatasetNotFoundError": "etcetera.errors",
    "EtceteraError": "etcetera.errors",
    "IntegrityError": "etcetera.errors",
    "InvalidNameError": "etcetera.errors",
    "LocalIOError": "etcetera.errors",
    "ManifestError": "etcetera.errors",
    "NotADatasetError": "etcetera.errors",
    "ObjectNotFoundError": "etcetera.errors",
    "PartitionNotFoundError": "etcetera.errors",
    "PreconditionFailedError": "etcetera.errors",
    "ProgressEvent": "etcetera.engine.progress",
    "PullResult": "etcetera.api",
    "PushResult": "etcetera.api",
    "RemoteDataset": "etcetera.api",
    "RepositoryNotFoundError": "etcetera.errors",
    "ThrottledError": "etcetera.errors",
    "TransferStats": "etcetera.engine.progress",
    "TransientError": "etcetera.errors",
    "acreate": "etcetera.api",
    "adataset": "etcetera.api",
    "als": "etcetera.api",
    "apull": "etcetera.api",
    "apurge": "etcetera.api",
    "apush": "etcetera.api",
    "aregister": "etcetera.api",
    "create": "etcetera.sync",
    "dataset": "etcetera.sync",
    "ls": "etcetera.sync",
    "pull": "etcetera.sync",
    "purge": "etcetera.sync",
    "push": "etcetera.sync",
    "register": "etcetera.sync",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
