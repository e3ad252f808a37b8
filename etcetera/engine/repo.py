"""Versions and manifests in a repository: listing, reading (verified), publishing."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import (
    ConcurrentPushError,
    DatasetNotFoundError,
    EtceteraError,
    IntegrityError,
    ManifestError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from ..format import layout
from ..format.hashing import sha256_hex
from ..format.manifest import Manifest, VersionRecord
from .transport import Transport

MAX_MANIFEST = 4 << 30  # a manifest of 10^7 files is ~1.5 GB of JSON
MAX_RECORD = 1 << 20


@dataclass(frozen=True, slots=True)
class RemoteDataset:
    """A dataset as listed in a repository."""

    name: str
    versions: tuple[int, ...]
    legacy: bool = False

    @property
    def latest(self) -> int | None:
        """Highest version number (``None`` for a legacy-only dataset)."""
        return self.versions[-1] if self.versions else None


async def list_datasets(t: Transport) -> list[RemoteDataset]:
    """Every dataset of the repository, with its versions; legacy ``NAME.tgz`` too."""
    found: dict[str, list[int]] = {}
    for info in await t.list(layout.REFS):
        parsed = layout.parse_ref_key(info.key)
        if parsed:
            found.setdefault(parsed[0], []).append(parsed[1])
    out = [RemoteDataset(n, tuple(sorted(v))) for n, v in found.items()]
    for info in await t.list(""):
        if "/" not in info.key and info.key.endswith(".tgz"):
            name = info.key[: -len(".tgz")]
            if name not in found:
                out.append(RemoteDataset(name, (), legacy=True))
    return sorted(out, key=lambda d: d.name)


async def versions(t: Transport, name: str) -> list[int]:
    """Version numbers of ``name``, ascending (empty when it does not exist)."""
    out = []
    for info in await t.list(layout.refs_prefix(name)):
        parsed = layout.parse_ref_key(info.key)
        if parsed and parsed[0] == name:
            out.append(parsed[1])
    return sorted(out)


async def read_record(t: Transport, name: str, number: int) -> VersionRecord:
    """The version record ``name@number``."""
    try:
        data = await t.read(layout.ref_key(name, number), MAX_RECORD)
    except ObjectNotFoundError:
        raise DatasetNotFoundError(
            f"dataset {name} has no version {number} in {t.backend.describe()}"
        ) from None
    return VersionRecord.parse(data, name, number)


async def resolve(t: Transport, name: str, number: int | None) -> VersionRecord:
    """The record of version ``number`` of ``name``, or of its latest version."""
    if number is None:
        found = await versions(t, name)
        if not found:
            raise DatasetNotFoundError(
                f"dataset {name} does not exist in {t.backend.describe()} "
                "(etc list --remote shows what does)"
            )
        number = found[-1]
    return await read_record(t, name, number)


async def read_manifest(t: Transport, digest: str) -> tuple[Manifest, bytes]:
    """Fetch a manifest, check its bytes hash to its name, parse and validate it."""
    try:
        data = await t.read(layout.manifest_key(digest), MAX_MANIFEST)
    except ObjectNotFoundError:
        raise ManifestError(f"manifest {digest} is missing from {t.backend.describe()}") from None
    if sha256_hex(data) != digest:
        raise IntegrityError(f"manifest {digest} does not match its digest")
    return Manifest.parse(data), data


async def publish(t: Transport, record: VersionRecord) -> None:
    """Write the version record, create-only: the last write of a push."""
    key = layout.ref_key(record.name, record.number)
    data = record.to_json()
    try:
        await t.put(key, data, if_absent=True)
    except PreconditionFailedError:
        # A retry whose first attempt landed (its answer was lost) finds its own record.
        try:
            if await t.read(key, MAX_RECORD) == data:
                return
        except EtceteraError:
            pass
        raise ConcurrentPushError(
            f"another push published {record.name}@{record.number} first: "
            f"pull it, then push again with --force"
        ) from None
