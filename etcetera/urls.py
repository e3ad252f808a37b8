"""Repository URLs: ``file:///path``, ``s3://bucket/prefix``, ``gs://bucket/prefix``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import URLError

SCHEMES = ("file", "s3", "gs")

# Loose enough for S3-compatible stores (which allow dots and capitals in old buckets),
# strict enough to refuse what no store accepts.
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,221}[A-Za-z0-9]$")


@dataclass(frozen=True, slots=True)
class RepoURL:
    """A parsed repository URL.

    Attributes:
        scheme: ``file``, ``s3`` or ``gs``.
        bucket: bucket name (empty for ``file``).
        prefix: key prefix inside the bucket, without leading or trailing ``/``;
            for ``file`` the absolute folder path.
    """

    scheme: str
    bucket: str
    prefix: str

    @property
    def path(self) -> Path:
        """The folder of a ``file://`` repository."""
        return Path(self.prefix)

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file://{self.prefix}"
        tail = f"/{self.prefix}" if self.prefix else ""
        return f"{self.scheme}://{self.bucket}{tail}"


def parse_url(url: str) -> RepoURL:
    """Parse and check a repository URL.

    Args:
        url: ``file:///abs/path``, ``file://relative`` is refused, ``s3://bucket[/prefix]``,
            ``gs://bucket[/prefix]``. A plain absolute path is taken as ``file://``.

    Raises:
        URLError: the URL is malformed; the message says why.
    """
    text = url.strip()
    if text.startswith("/"):
        text = "file://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise URLError(
            f"unsupported repository url {url!r}: expected file:///path, s3://bucket or gs://bucket"
        )
    if parts.query or parts.fragment:
        raise URLError(f"repository url {url!r} must not have a query or fragment")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise URLError(f"file url {url!r} must be absolute: file:///abs/path")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise URLError(f"file url {url!r} must be absolute: file:///abs/path")
        return RepoURL("file", "", str(Path(path)))
    bucket = parts.netloc
    if not bucket or not _BUCKET.match(bucket) or ".." in bucket:
        raise URLError(f"invalid bucket name {bucket!r} in repository url {url!r}")
    prefix = unquote(parts.path).strip("/")
    if any(seg in ("", ".", "..") for seg in prefix.split("/")) and prefix:
        raise URLError(f"invalid key prefix {prefix!r} in repository url {url!r}")
    return RepoURL(scheme, bucket, prefix)
