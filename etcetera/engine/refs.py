"""Versions of a dataset in a repository: list, resolve, decide the next, commit.

A version is a create-only record ``refs/NAME/K`` naming a manifest; it is written
last, so a version exists only once everything it names is in the repository. This
module is the one place that decides what a push of a tree under a name means (a
no-op, a refusal, or version K+1), for a push from one machine and from many.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..backends.base import ObjectInfo
from ..errors import (
    ConcurrentPushError,
    DatasetNotFoundError,
    EtceteraError,
    ObjectNotFoundError,
    PreconditionFailedError,
    VersionExistsError,
)
from ..format import layout
from ..format.paths import is_name
from ..format.record import VersionRecord
from . import claims
from .transport import Transport

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
    # Keys that are not a valid name (say, one holding terminal escapes) are no dataset.
    for info in await t.list(layout.REFS):
        parsed = layout.parse_ref_key(info.key)
        if parsed and is_name(parsed[0]):
            found.setdefault(parsed[0], []).append(parsed[1])
    out = [RemoteDataset(n, tuple(sorted(v))) for n, v in found.items()]
    for info in await t.list(""):
        if "/" not in info.key and info.key.endswith(".tgz"):
            name = info.key[: -len(".tgz")]
            if name not in found and is_name(name):
                out.append(RemoteDataset(name, (), legacy=True))
    return sorted(out, key=lambda d: d.name)


async def versions(t: Transport, name: str) -> list[int]:
    """Version numbers of ``name``, ascending (empty when it does not exist)."""
    return sorted(await listed_versions(t, name))


async def listed_versions(t: Transport, name: str) -> dict[int, ObjectInfo]:
    """The records of ``name`` as the store lists them: version number -> its object."""
    out = {}
    for info in await t.list(layout.refs_prefix(name)):
        parsed = layout.parse_ref_key(info.key)
        if parsed and parsed[0] == name:
            out[parsed[1]] = info
    return out


async def read_record(t: Transport, name: str, number: int) -> VersionRecord:
    """The version record ``name@number``."""
    try:
        data = await t.read(layout.ref_key(name, number), MAX_RECORD)
    except ObjectNotFoundError:
        raise DatasetNotFoundError(
            f"dataset {name} has no version {number} in {t.backend.describe()}"
        ) from None
    return VersionRecord.parse(data, name, number)


async def read_records(t: Transport, name: str, numbers: list[int]) -> list[VersionRecord]:
    """The records of versions ``numbers`` of ``name``, read by the transport's pool."""
    found: dict[int, VersionRecord] = {}

    async def one(number: int) -> None:
        found[number] = await read_record(t, name, number)

    await t.each(numbers, one)
    return [found[n] for n in numbers]


async def latest(t: Transport, name: str) -> VersionRecord | None:
    """The record of the latest version of ``name``, ``None`` when it has none."""
    found = await versions(t, name)
    return await read_record(t, name, found[-1]) if found else None


async def resolve(t: Transport, name: str, number: int | None) -> VersionRecord:
    """The record of version ``number`` of ``name``, or of its latest version."""
    if number is None:
        record = await latest(t, name)
        if record is None:
            raise DatasetNotFoundError(
                f"dataset {name} does not exist in {t.backend.describe()} "
                "(etc list --remote shows what does)"
            )
        return record
    return await read_record(t, name, number)


def next_number(
    t: Transport,
    name: str,
    latest: VersionRecord | None,
    digest: str,
    *,
    force: bool,
    same_tree: bool = False,
) -> int | None:
    """The version a push of the tree ``digest`` publishes, or ``None`` for a no-op.

    A no-op when the latest version holds this tree (the same manifest digest, or
    ``same_tree``: equal content under another digest, in an older format).

    Raises:
        VersionExistsError: the latest version holds other content and not ``force``.
    """
    if latest is None:
        return 1
    if latest.manifest == digest or same_tree:
        return None
    if not force:
        raise VersionExistsError(
            f"dataset {name} already exists in {t.backend.describe()} as version "
            f"{latest.number} with other content",
            name=name,
            latest=latest.number,
        )
    return latest.number + 1


async def commit(t: Transport, record: VersionRecord, *, create_only: bool = True) -> None:
    """Write the version record, create-only: the last write of a push.

    ``create_only=False``: the store ignores create-only writes, so the record is
    published through a claim (:mod:`etcetera.engine.claims`) instead.

    Raises:
        ConcurrentPushError: another push published this version number first.
    """
    key = layout.ref_key(record.name, record.number)
    data = record.to_json()
    if not create_only:
        await claims.publish_claimed(t, key, data, record.name, record.number)
        return
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
            f"another push published {record.name}@{record.number} first",
            name=record.name,
            number=record.number,
        ) from None
