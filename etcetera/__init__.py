"""etcetera: dataset sharing via cloud storage (S3, Google Cloud Storage, a folder).

Sync functions (``dataset``, ``pull``, ``push`` ...) are made from their async twins
(``adataset``, ``apull``, ``apush`` ...); both work inside a running event loop.

The packages, top down (each imports only those below it)::

    cli/          the etc command, one module per command
    distributed/  push and pull over a Dask cluster (etcetera[dask])
    sync          the sync API, made from the async one
    api/          the async API: one session per operation, pull, push, the home's
                  datasets, info and verify, rm and gc
    connect       settings -> transfer options, back-end options, an open back-end
    engine/       the transfer engine: transport (limits, retries, pool), refs,
                  manifests, push, pull, scan
    backends/     file://, s3:// and gs:// behind one small interface
    format/       the remote format: manifests, records, selections, shards (pure)
    home          the local home: datasets, version folders, staging, locks
    settings, urls, errors, defaults
"""

# Only private names besides the public ones: `dir(etcetera)` and tab completion show
# the API, not this module's imports.
import typing as _typing

from ._version import __version__

if _typing.TYPE_CHECKING:
    from .api import (
        Changes,
        Diff,
        FileListing,
        GcResult,
        LogEntry,
        PullResult,
        PushResult,
        RemoteDataset,
        RemotePath,
        RemoteVersion,
        Status,
        VerifyResult,
        acat,
        acreate,
        adataset,
        adiff,
        agc,
        ainfo,
        alist_files,
        alist_remote,
        alog,
        als,
        apull,
        apurge,
        apush,
        aregister,
        aremote,
        arm_remote,
        astatus,
        averify,
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
        PathNotFoundError,
        PreconditionFailedError,
        ReadOnlyError,
        RepositoryNotFoundError,
        ThrottledError,
        TransientError,
    )
    from .model import Dataset
    from .settings import Config
    from .streaming import Sample, Stream, astream
    from .sync import (
        cat,
        create,
        dataset,
        gc,
        info,
        list_files,
        list_remote,
        ls,
        pull,
        purge,
        push,
        register,
        remote,
        rm_remote,
        stream,
        verify,
    )


__all__ = [
    "AccessDeniedError",
    "BackendError",
    "Changes",
    "ConcurrentPushError",
    "Config",
    "ConfigError",
    "Dataset",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "Diff",
    "EtceteraError",
    "FileListing",
    "GcResult",
    "IntegrityError",
    "InvalidNameError",
    "LocalIOError",
    "LogEntry",
    "ManifestError",
    "NotADatasetError",
    "ObjectNotFoundError",
    "PartitionNotFoundError",
    "PathNotFoundError",
    "PreconditionFailedError",
    "ProgressEvent",
    "PullResult",
    "PushResult",
    "ReadOnlyError",
    "RemoteDataset",
    "RemotePath",
    "RemoteVersion",
    "RepositoryNotFoundError",
    "Sample",
    "Status",
    "Stream",
    "ThrottledError",
    "TransferStats",
    "TransientError",
    "VerifyResult",
    "__version__",
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
    "astream",
    "averify",
    "cat",
    "create",
    "dataset",
    "diff",
    "gc",
    "info",
    "list_files",
    "list_remote",
    "log",
    "ls",
    "pull",
    "purge",
    "push",
    "register",
    "remote",
    "rm_remote",
    "status",
    "stream",
    "verify",
]


# Names are imported on first use, so that `etc --version` and `import etcetera` stay
# fast (pydantic-settings and the engine load only when something needs them).
_LAZY = {
    "AccessDeniedError": "etcetera.errors",
    "BackendError": "etcetera.errors",
    "Changes": "etcetera.api",
    "ConcurrentPushError": "etcetera.errors",
    "Config": "etcetera.settings",
    "ConfigError": "etcetera.errors",
    "Dataset": "etcetera.model",
    "DatasetExistsError": "etcetera.errors",
    "DatasetNotFoundError": "etcetera.errors",
    "Diff": "etcetera.api",
    "EtceteraError": "etcetera.errors",
    "GcResult": "etcetera.api",
    "IntegrityError": "etcetera.errors",
    "InvalidNameError": "etcetera.errors",
    "LocalIOError": "etcetera.errors",
    "LogEntry": "etcetera.api",
    "ManifestError": "etcetera.errors",
    "NotADatasetError": "etcetera.errors",
    "ObjectNotFoundError": "etcetera.errors",
    "PartitionNotFoundError": "etcetera.errors",
    "PathNotFoundError": "etcetera.errors",
    "PreconditionFailedError": "etcetera.errors",
    "ProgressEvent": "etcetera.engine.progress",
    "PullResult": "etcetera.api",
    "PushResult": "etcetera.api",
    "ReadOnlyError": "etcetera.errors",
    "RemoteDataset": "etcetera.api",
    "RemotePath": "etcetera.api",
    "RemoteVersion": "etcetera.api",
    "RepositoryNotFoundError": "etcetera.errors",
    "Status": "etcetera.api",
    "Sample": "etcetera.streaming",
    "Stream": "etcetera.streaming",
    "ThrottledError": "etcetera.errors",
    "TransferStats": "etcetera.engine.progress",
    "TransientError": "etcetera.errors",
    "VerifyResult": "etcetera.api",
    "FileListing": "etcetera.api",
    "acat": "etcetera.api",
    "acreate": "etcetera.api",
    "adataset": "etcetera.api",
    "adiff": "etcetera.api",
    "agc": "etcetera.api",
    "ainfo": "etcetera.api",
    "alist_files": "etcetera.api",
    "alist_remote": "etcetera.api",
    "alog": "etcetera.api",
    "als": "etcetera.api",
    "apull": "etcetera.api",
    "apurge": "etcetera.api",
    "apush": "etcetera.api",
    "aregister": "etcetera.api",
    "aremote": "etcetera.api",
    "arm_remote": "etcetera.api",
    "astatus": "etcetera.api",
    "astream": "etcetera.streaming",
    "averify": "etcetera.api",
    "cat": "etcetera.sync",
    "create": "etcetera.sync",
    "dataset": "etcetera.sync",
    "diff": "etcetera.sync",
    "gc": "etcetera.sync",
    "info": "etcetera.sync",
    "list_files": "etcetera.sync",
    "list_remote": "etcetera.sync",
    "log": "etcetera.sync",
    "ls": "etcetera.sync",
    "pull": "etcetera.sync",
    "purge": "etcetera.sync",
    "push": "etcetera.sync",
    "register": "etcetera.sync",
    "remote": "etcetera.sync",
    "rm_remote": "etcetera.sync",
    "status": "etcetera.sync",
    "stream": "etcetera.sync",
    "verify": "etcetera.sync",
}


def __getattr__(name: str) -> _typing.Any:
    import importlib

    module = _LAZY.get(name)
    if module is None:
        # A submodule not imported yet (`etcetera.api`, `etcetera.distributed` ...).
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # The public names, the module's dunders and the submodules imported so far.
    loaded = {
        n
        for n, v in globals().items()
        if not n.startswith("_") and getattr(v, "__name__", "") == f"{__name__}.{n}"
    }
    dunders = {n for n in globals() if n.startswith("__") and n.endswith("__")}
    return sorted(set(__all__) | dunders | loaded)
