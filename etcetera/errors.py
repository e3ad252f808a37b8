"""The one exception tree of etcetera.

Every error etcetera raises on purpose derives from :class:`EtceteraError`, and
also from the builtin a caller would already catch for it::

    EtceteraError
    ├── ConfigError                 (ValueError)      a setting is missing or invalid
    │   ├── SettingsError                             a settings file, variable or argument is bad
    │   ├── URLError                                  the repository URL is malformed
    │   └── MissingExtraError       (ImportError)     etcetera[s3] or etcetera[gcs] is not installed
    ├── InvalidNameError            (ValueError)      a dataset name breaks the naming rule
    ├── NotADatasetError            (ValueError)      a folder breaks a dataset rule
    ├── DatasetNotFoundError        (FileNotFoundError)  no such dataset, locally or remotely
    ├── PathNotFoundError           (FileNotFoundError)  no such file or folder in a version
    ├── ReadOnlyError               (PermissionError) a write through etc:// (etc push publishes)
    ├── DatasetExistsError          (FileExistsError) refusing to overwrite without force
    │   └── VersionExistsError                        a push of other content, without force
    ├── PartitionNotFoundError      (KeyError)        ds['nope']
    ├── ManifestError               (ValueError)      repository content is malformed or hostile
    ├── IntegrityError              (ValueError)      bytes do not match their digest
    ├── ConcurrentPushError         (FileExistsError) another push published that version first
    ├── ClusterError                (RuntimeError)    the Dask cluster cannot run the work
    ├── LocalIOError                (OSError)         the local disk refused (full, unwritable)
    │   └── SourceChangedError                        a file changed while it was pushed
    └── BackendError                (OSError)         the repository refused or failed
        ├── RepositoryNotFoundError (FileNotFoundError)  the bucket or folder does not exist
        ├── ObjectNotFoundError     (FileNotFoundError)
        ├── AccessDeniedError       (PermissionError)
        ├── PreconditionFailedError (FileExistsError)    a create-only write found the object
        └── TransientError          (ConnectionError) retryable: 5xx, resets, timeouts
            └── ThrottledError                        retryable: 429, 503 SlowDown

Each error is raised where it happens, as its own class: nothing translates one
etcetera error into another on the way up.

``retryable`` says what the transport (``engine/transport.py``) does with an error:
it repeats the request, with backoff, while ``retryable`` is true and attempts remain,
and passes any other error up at once. Only :class:`TransientError` (and so
:class:`ThrottledError`) is retryable. :class:`IntegrityError` is not: repeating a
request does not re-fetch what already failed its check (the check runs on bytes the
transport has returned), so a pull that meets one fails, and the next pull fetches the
bytes again.

Third-party errors (botocore, aiohttp, OSError of a repository folder) are
translated once, in the back-end that sees them, with ``raise Mapped(...) from exc``.
"""

from __future__ import annotations

from typing import Any


class EtceteraError(Exception):
    """Base of every error etcetera raises on purpose."""

    #: Whether trying the same operation again may succeed.
    retryable: bool = False


class ConfigError(EtceteraError, ValueError):
    """A setting is missing or invalid; the message names the key and where it came from."""


class SettingsError(ConfigError):
    """A settings file is unreadable or not TOML, or a key is unknown or has an invalid value."""


class URLError(ConfigError):
    """A repository URL is malformed (raised by :func:`etcetera.urls.parse_url`)."""


class MissingExtraError(ConfigError, ImportError):
    """The back-end's optional dependencies (``etcetera[s3]``, ``etcetera[gcs]``) are missing."""


class InvalidNameError(EtceteraError, ValueError):
    """A dataset name does not match ``[A-Za-z0-9][A-Za-z0-9._-]{0,127}``."""


class NotADatasetError(EtceteraError, ValueError):
    """A folder breaks one of the dataset rules (``data/`` of partition folders)."""


class DatasetNotFoundError(EtceteraError, FileNotFoundError):
    """No dataset of that name (or version) exists locally or in the repository."""


class PathNotFoundError(EtceteraError, FileNotFoundError):
    """A path that the version read does not hold; the message names the nearest ones."""


class ReadOnlyError(EtceteraError, PermissionError):
    """A write through the ``etc://`` file system, which reads versions and never writes."""


class DatasetExistsError(EtceteraError, FileExistsError):
    """The dataset exists and the operation would replace it without ``force``."""


class VersionExistsError(DatasetExistsError):
    """The name's latest version holds other content, and the push did not ask to replace it.

    Attributes:
        name: the dataset.
        latest: its latest version number (a push with ``force`` makes ``latest + 1``).
    """

    def __init__(self, message: str, *, name: str, latest: int) -> None:
        super().__init__(message)
        self.name = name
        self.latest = latest

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled with its fields (Dask sends errors back from the workers).
        return _rebuild, (type(self), str(self), {"name": self.name, "latest": self.latest})


class PartitionNotFoundError(EtceteraError, KeyError):
    """A partition that the dataset does not have was asked for."""

    def __str__(self) -> str:
        # KeyError quotes its argument; a person wants the plain sentence.
        return str(self.args[0]) if self.args else ""


class ManifestError(EtceteraError, ValueError):
    """A manifest or version record from the repository is malformed or hostile."""


class IntegrityError(EtceteraError, ValueError):
    """Bytes read or written do not match the digest or size they must have.

    Not retryable: the transport repeats requests, and the check fails after the
    request has returned (see the module docstring).
    """


class ConcurrentPushError(EtceteraError, FileExistsError):
    """Another push published the same version number first.

    Attributes:
        name: the dataset.
        number: the version number the other push took.
    """

    def __init__(self, message: str, *, name: str = "", number: int = 0) -> None:
        super().__init__(message)
        self.name = name
        self.number = number

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), str(self), {"name": self.name, "number": self.number})


def _rebuild(cls: type[EtceteraError], message: str, fields: dict[str, Any]) -> EtceteraError:
    """An error with keyword fields, unpickled."""
    return cls(message, **fields)


class ClusterError(EtceteraError, RuntimeError):
    """The Dask cluster cannot run the work: no workers, one gone too long, a task misplaced."""


class LocalIOError(EtceteraError, OSError):
    """The local file system refused an operation (no space, no permission)."""


class SourceChangedError(LocalIOError):
    """A file's bytes no longer match what was scanned and hashed: push again.

    Attributes:
        source: the path of the file that changed.
    """

    def __init__(self, source: str) -> None:
        super().__init__(f"{source} changed while it was pushed: push again")
        self.source = source

    def __reduce__(self) -> tuple[type[SourceChangedError], tuple[str]]:
        # Rebuilt from the path, not the message, when pickled (Dask sends errors back).
        return (type(self), (self.source,))


class BackendError(EtceteraError, OSError):
    """The repository refused a request or failed to answer it."""


class RepositoryNotFoundError(BackendError, FileNotFoundError):
    """The bucket, or the repository folder, does not exist."""


class ObjectNotFoundError(BackendError, FileNotFoundError):
    """The object does not exist in the repository."""


class AccessDeniedError(BackendError, PermissionError):
    """The repository refused the credentials, or they lack a permission."""


class PreconditionFailedError(BackendError, FileExistsError):
    """A create-only write found the object already there."""


class TransientError(BackendError, ConnectionError):
    """A failure that may pass: a 5xx answer, a reset connection, a timeout."""

    retryable = True


class ThrottledError(TransientError):
    """The repository asked us to slow down (HTTP 429, 503 SlowDown)."""
