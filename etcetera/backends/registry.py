"""Open the back-end for a repository URL, importing its module only when first used."""

from __future__ import annotations

import importlib

from ..errors import MissingExtraError
from ..urls import RepoURL
from .base import Backend, BackendOptions

_MODULES = {
    "file": ("etcetera.backends.file", "FileBackend", None),
    "s3": ("etcetera.backends.s3", "S3Backend", "s3"),
    "gs": ("etcetera.backends.gcs", "GCSBackend", "gcs"),
}


def open_backend(url: RepoURL, options: BackendOptions) -> Backend:
    """Build the back-end for ``url``.

    Raises:
        MissingExtraError: ``etcetera[s3]`` or ``etcetera[gcs]`` is not installed.
    """
    module_name, class_name, extra = _MODULES[url.scheme]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingExtraError(
            f"{url.scheme}:// repositories need pip install 'etcetera[{extra}]' "
            f"({exc.name} is missing)"
        ) from exc
    backend: Backend = getattr(module, class_name)(url, options)
    return backend
