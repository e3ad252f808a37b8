"""Where the objects of formats v1 and v2 live in a repository (keys relative to its root)."""

from __future__ import annotations

import re

ROOT = "etc-v1"
OBJECTS = f"{ROOT}/objects/"
MANIFESTS = f"{ROOT}/manifests/"
REFS = f"{ROOT}/refs/"
UPLOADS = f"{ROOT}/tmp/"
_NUMBER = re.compile("[1-9][0-9]{0,17}")  # below 10^18: an int64 on every store


def object_key(object_id: str) -> str:
    """Key of a pack or blob (fanned out by the first two hex digits)."""
    return f"{OBJECTS}{object_id[:2]}/{object_id}"


def manifest_key(digest: str) -> str:
    """Key of a manifest, named by the SHA-256 of its bytes."""
    return f"{MANIFESTS}{digest}.json"


def piece_key(piece_id: str) -> str:
    """Key of a manifest piece (format v2), named by the SHA-256 of its uncompressed bytes."""
    return f"{MANIFESTS}{piece_id}.piece"


def refs_prefix(name: str) -> str:
    """Prefix under which the version records of ``name`` live."""
    return f"{REFS}{name}/"


def ref_key(name: str, number: int) -> str:
    """Key of version ``number`` of ``name``: written once, create-only, last."""
    return f"{REFS}{name}/{number}"


def parse_ref_key(key: str) -> tuple[str, int] | None:
    """``(name, number)`` of a ref key, or ``None`` for anything else."""
    if not key.startswith(REFS):
        return None
    rest = key[len(REFS) :].split("/")
    number = version_number(rest[1]) if len(rest) == 2 else None
    return None if number is None else (rest[0], number)


def version_number(text: str) -> int | None:
    """The version ``text`` names (``[1-9][0-9]*``, ASCII digits only), or ``None``.

    ``str.isdigit`` would take ``²`` (which ``int`` refuses) and ``٣`` (which it reads as 3).
    """
    return int(text) if _NUMBER.fullmatch(text) else None


def legacy_key(name: str) -> str:
    """Key of a dataset pushed by etcetera 0.0.x: one tgz at the repository root."""
    return f"{name}.tgz"
