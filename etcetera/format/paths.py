"""The names and paths a repository may give: what is safe to create on a local disk.

Every name and path here comes from a shared repository (or a user) and is treated as
hostile: a dataset name is one plain folder name; a dataset path is relative,
``/``-separated and NFC-normalised, and never climbs out of its dataset folder. Two
paths that would land on the same file on a case-insensitive or normalising file
system (or a file where another path needs a folder) *clash*.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from ..errors import InvalidNameError, ManifestError

MAX_PATH = 4096
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid dataset name, else raise ``InvalidNameError``."""
    if not isinstance(name, str) or not is_name(name):
        raise InvalidNameError(
            f"invalid dataset name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def is_name(name: str) -> bool:
    """Whether ``name`` is a valid dataset name (:func:`check_name`, without raising)."""
    return bool(_NAME.fullmatch(name)) and ".." not in name  # fullmatch: "$" takes "\n"


def check_path(path: object) -> str:
    """Return ``path`` if it is a safe relative dataset path, else raise ``ManifestError``."""
    if not isinstance(path, str) or not path:
        raise ManifestError(f"manifest path {path!r} is not a non-empty string")
    if len(path) > MAX_PATH or "\x00" in path or "\\" in path:
        raise ManifestError(f"manifest path {path!r} has forbidden characters or length")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise ManifestError(f"manifest path {path!r} is absolute")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ManifestError(f"manifest path {path!r} climbs out or has empty segments")
    if unicodedata.normalize("NFC", path) != path:
        raise ManifestError(f"manifest path {path!r} is not NFC-normalised")
    return path


def find_clashes(paths: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of paths equal once case-folded and NFC-normalised, or a file under a file."""
    originals = list(paths)
    if not originals:
        return []
    joined = "\x00".join(originals)
    if not joined.isascii():
        joined = unicodedata.normalize("NFC", joined)
    folded = joined.casefold().split("\x00")
    seen: dict[str, str] = dict(zip(folded, originals, strict=True))
    clashes: list[tuple[str, str]] = []
    if len(seen) != len(originals):
        first: dict[str, str] = {}
        for key, p in zip(folded, originals, strict=True):
            if key in first:
                clashes.append((first[key], p))
            else:
                first[key] = p
    # A file where another path needs a folder: look up each distinct parent folder.
    for parent in {key.rpartition("/")[0] for key in seen}:
        i = len(parent)
        while i > 0:
            hit = seen.get(parent[:i])
            if hit is not None:
                clashes.append((hit, parent))
            i = parent.rfind("/", 0, i)
    return clashes


_DRIVE = re.compile(r"\x00[A-Za-z]:")
_DOTS = re.compile(r"/\.\.?/")


def _paths_look_safe(joined: str) -> bool:
    if "\\" in joined or (":" in joined and _DRIVE.search(f"\x00{joined}")):
        return False
    # With each NUL made a "/" and a "/" at both ends, one "//" is an absolute, empty or
    # slash-ended path or an empty segment; "/./" and "/../" are dot segments, at either
    # end of a path too. The ends are looked at apart (a pattern is at most 4 characters),
    # so that the whole text is not copied once more.
    slashed = joined.replace("\x00", "/")
    ends = (f"/{slashed[:3]}", f"{slashed[-3:]}/", slashed)
    for text in ends if len(slashed) > 8 else (f"/{slashed}/",):
        if "//" in text or ("/." in text and _DOTS.search(text)):
            return False
    return True


def check_paths(paths: list[str], *, strings: bool = False, joined: str | None = None) -> str:
    """Check many paths at once (a few C-speed scans); raise ``ManifestError`` on a bad one.

    ``strings``: the caller knows every item is a ``str`` (a decoder made them).
    ``joined``: the text ``paths`` were split from at NULs, if they were (a decoded piece).

    Returns:
        the paths joined by NULs, which the checks made anyway.
    """
    if not paths:
        return ""
    if not strings and set(map(type, paths)) != {str}:
        raise ManifestError("manifest has a path that is not a string")
    split = joined is not None and strings  # then no path holds a NUL
    if joined is None or not strings:
        joined = "\x00".join(paths)
    if (
        (not split and joined.count("\x00") != len(paths) - 1)
        or not _paths_look_safe(joined)
        or max(map(len, paths)) > MAX_PATH
        or not (joined.isascii() or unicodedata.is_normalized("NFC", joined))
    ):
        for p in paths:
            check_path(p)
        raise ManifestError("manifest has an invalid path")
    return joined
