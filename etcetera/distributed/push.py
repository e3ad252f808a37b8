"""One version from files spread over the workers of a Dask cluster (:func:`push`).

Each group (a partition, or the files outside ``data/``) is scanned, hashed and laid
out by a worker that holds it (phase one), then its missing objects and manifest pieces
are uploaded by the same worker (phase two); the driver assembles the manifest root from
the piece lists and publishes the version record last.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from distributed import Client, Future, get_worker

from ..api import PushResult, push_options, resolve_config, session
from ..api.stores import create_only
from ..engine import inflight, manifests, refs, storing
from ..engine import push as engine_push
from ..engine.scan import HashCache
from ..errors import ClusterError, LocalIOError, NotADatasetError
from ..format.hashing import CHUNK_SIZE, sha256_hex
from ..format.v2 import ManifestRoot, PieceRef, manifest_root
from ..home import Home, valid_name
from ..model import check_dataset
from ..settings import Config
from ..sync import run
from .workers import Paths, Pinned, mine


@dataclass(frozen=True)
class _Holding:
    """What one worker's dataset folder holds (the answer to discovery)."""

    partitions: tuple[str, ...]
    filled: tuple[str, ...]  # partitions with at least one entry
    top: bool  # anything outside data/


@dataclass
class _GroupPlan:
    """One group (a partition, or ``""`` for files outside ``data/``) as a worker laid it out.

    Attributes:
        group: partition name, or ``""``.
        refs: its manifest pieces.
        starts: the first path of each piece.
        dirs: empty folders outside ``data/`` (the ``""`` group only).
        missing: bytes of objects the repository lacked (after sending: sent).
        warnings: files skipped and why.
        marker: the in-progress marker the worker wrote (``engine/inflight.py``).
    """

    group: str
    refs: tuple[PieceRef, ...]
    starts: tuple[str, ...]
    dirs: tuple[str, ...] = ()
    missing: int = 0
    warnings: list[str] = field(default_factory=list)
    marker: str = ""


def _discover(roots: Paths, ignore: tuple[str, ...], dask_worker: Any = None) -> _Holding | None:
    root = mine(roots, Path(), dask_worker)
    if root is None:
        return None
    if not isinstance(roots, Mapping) and not root.exists():
        return None  # one path for all: a node without it holds nothing
    root = root.resolve()
    check_dataset(root)  # a folder named for this worker must be a dataset
    data = root / "data"
    parts, filled = [], []
    for entry in sorted(os.scandir(data), key=lambda e: e.name):
        if entry.name in ignore or not entry.is_dir():
            continue
        parts.append(entry.name)
        if any(e.name not in ignore for e in os.scandir(entry.path)):
            filled.append(entry.name)
    top = any(e.name != "data" and e.name not in ignore for e in os.scandir(root))
    return _Holding(tuple(parts), tuple(filled), top)


def _group_cache(home: Home, root: Path, group: str) -> HashCache:
    # One cache file per group: groups of one folder may be hashed at once.
    return HashCache(home.cache_file(root / "data" / group))


@dataclass
class _Laid:
    """A group laid out by the worker that holds it, kept there between the two phases."""

    root: Path
    prepared: engine_push.Prepared
    cache: HashCache
    plan: _GroupPlan


def _lay_out(cfg: Config, name: str, roots: Paths, group: str) -> _Laid:
    """Worker task, phase one: scan, hash (cached) and lay out ``group``."""
    root = mine(roots, Path())
    if root is None:
        raise ClusterError(f"worker {get_worker().address} holds no folder of {name}")
    return anyio.run(_alay_out, cfg, name, root.resolve(), group)


async def _alay_out(cfg: Config, name: str, root: Path, group: str) -> _Laid:
    home = Home(cfg.home)
    cache = await anyio.to_thread.run_sync(_group_cache, home, root, group)
    async with session(cfg) as s:
        prepared = await engine_push.prepare(
            s.transport, root, name, push_options(cfg), cache=cache, group=group
        )
    encoded = prepared.encoded
    plan = _GroupPlan(
        group,
        encoded.refs,
        encoded.starts,
        tuple(prepared.manifest.dirs),
        warnings=prepared.scan.warnings,
    )
    return _Laid(root, prepared, cache, plan)


def _submit_lay_out(
    client: Client,
    cfg: Config,
    name: str,
    roots: Paths,
    group: str,
    where: list[str],
    retries: int,
) -> Future[_Laid]:
    """Lay ``group`` out on one of the workers at ``where`` (phase one)."""
    return client.submit(
        _lay_out,
        cfg,
        name,
        roots,
        group,
        workers=where,
        allow_other_workers=False,
        retries=retries,
        pure=False,
    )


def _plan_of(laid: _Laid) -> _GroupPlan:
    """Worker task: the small part of a laid-out group that the driver gathers."""
    return laid.plan


def _send(cfg: Config, name: str, laid: _Laid, expected: tuple[PieceRef, ...]) -> _GroupPlan:
    """Worker task, phase two: upload what the repository lacks of a laid-out group.

    ``laid`` is normally the phase-one result still held by this worker; if that worker
    died, Dask lays the group out again elsewhere, and it must come out the same.
    """
    if laid.plan.refs != expected:
        where = f"data/{laid.plan.group}" if laid.plan.group else "files outside data/"
        raise LocalIOError(f"{laid.root}: {where} changed while it was pushed: push again")
    return anyio.run(_asend, cfg, name, laid)


async def _asend(cfg: Config, name: str, laid: _Laid) -> _GroupPlan:
    prepared = laid.prepared
    async with session(cfg) as s:
        t = s.transport
        # Kept from gc until the driver has published (it removes the marker then).
        objects, pieces = prepared.manifest.objects, prepared.encoded.pieces
        marker = await inflight.begin_push(t, objects, "", pieces)
        try:
            missing = await engine_push.missing_objects(t, prepared.manifest)
            await engine_push.send(t, prepared, missing, name=name, cache=laid.cache)
            await manifests.write_pieces(t, prepared.encoded)
        except BaseException:
            await inflight.end(t, marker)
            raise
    return replace(laid.plan, missing=sum(o.size for o in missing), marker=marker)


def _ordered(plans: Sequence[_GroupPlan]) -> tuple[list[PieceRef], list[str]]:
    """All pieces in path order (each group's are already in order), and their first paths."""
    pairs = [(start, ref) for p in plans for start, ref in zip(p.starts, p.refs, strict=True)]
    pairs.sort(key=lambda pair: pair[0])
    return [ref for _, ref in pairs], [start for start, _ in pairs]


def push(
    name: str,
    client: Client,
    roots: Paths | None = None,
    *,
    config: Config | None = None,
    force: bool = False,
    retries: int = 2,
) -> PushResult:
    """Push a dataset whose files are spread over the workers of ``client`` as one version.

    Args:
        name: dataset name.
        client: a connected ``dask.distributed.Client``.
        roots: the dataset folder on the workers: one path (the same on every worker,
            e.g. a shared file system or the same scratch folder on each node) or a
            mapping of worker address or name to its folder. Default: the folder of the
            local dataset ``name`` on the driver, on every worker.
        config: settings for the driver and every worker (default: ``~/.etc.toml``
            and ``ETC_*`` variables on the driver).
        force: publish a new version even if ``name`` exists with other content.
        retries: times Dask re-runs a group's task whose worker failed or died.

    A partition held by several workers must hold the same files on each (one of them
    sends it). A worker that dies costs a re-run of its groups, never a half version:
    the version record is written by the driver, last, after every group's objects and
    manifest pieces are in the repository.

    Raises:
        DatasetExistsError: ``name`` exists with other content and no ``force``.
        NotADatasetError: no worker holds any partition, or a worker's folder breaks
            the dataset rules.
    """
    cfg = resolve_config(config)
    name = valid_name(name)
    if roots is None:
        roots = str(Home(cfg.home).location(name))
    holdings: dict[str, _Holding | None] = client.run(_discover, roots, tuple(cfg.ignore))
    partitions = sorted({p for h in holdings.values() if h for p in h.partitions})
    # Tasks are pinned by worker *name*: a worker its nanny restarts keeps its name (and
    # its folder), not its address.
    names = {a: w.get("name", a) for a, w in client.scheduler_info()["workers"].items()}
    holders: dict[str, list[Any]] = {}
    for address, held in sorted(holdings.items()):
        if held is None:
            continue
        for group in held.filled:
            holders.setdefault(group, []).append(names.get(address, address))
        if held.top:
            holders.setdefault("", []).append(names.get(address, address))
    if not partitions:
        raise NotADatasetError(f"no worker of the cluster holds a folder of dataset {name}")
    groups = sorted(holders)
    pinned = Pinned(client)
    laid: dict[str, Future[_Laid]] = {}

    def lay_out(group: str) -> Callable[[list[str]], Future[_GroupPlan]]:
        def make(where: list[str]) -> Future[_GroupPlan]:
            laid[group] = _submit_lay_out(client, cfg, name, roots, group, where, retries)
            return client.submit(_plan_of, laid[group], pure=False)

        return make

    done = pinned.run({g: (holders[g], lay_out(g)) for g in groups})
    plans: list[_GroupPlan] = [done[g] for g in groups]
    pieces, firsts = _ordered(plans)
    chunk_size = CHUNK_SIZE
    dirs = [d for p in plans for d in p.dirs]
    root = manifest_root(chunk_size, partitions, dirs, pieces, firsts)
    try:
        return run(_commit, cfg, name, roots, pinned, laid, plans, holders, root, force, retries)
    finally:
        client.cancel(list(laid.values()))  # frees the laid-out groups on the workers


async def _commit(
    cfg: Config,
    name: str,
    roots: Paths,
    pinned: Pinned,
    laid: dict[str, Future[_Laid]],
    plans: list[_GroupPlan],
    holders: dict[str, list[Any]],
    root: bytes,
    force: bool,
    retries: int,
) -> PushResult:
    digest = sha256_hex(root)
    head = ManifestRoot.parse(root)
    files, size = head.doc["files"], head.doc["size"]
    options = push_options(cfg, force=force)
    async with session(cfg) as s:
        t = s.transport
        result = PushResult(name, 0, digest, False, files, size, stats=t.stats)
        result.warnings = [w for p in plans for w in p.warnings]
        await s.backend.check()
        latest = await refs.latest(t, name)
        same = await storing.is_tree(t, latest, digest)  # the latest, stored compressed
        number = refs.next_number(t, name, latest, digest, force=force, same_tree=same)
        if number is None:
            assert latest is not None
            result.version, result.noop = latest.number, True
            return result
        result.version = number

        client = pinned.client

        def send(plan: _GroupPlan) -> Callable[[list[str]], Future[_GroupPlan]]:
            def make(where: list[str]) -> Future[_GroupPlan]:
                # Where the group was laid out (its files and the phase-one result are
                # there); laid out afresh when that worker came back under a new address.
                source = laid[plan.group]
                if not set(where) & set(client.who_has([source]).get(source.key, ())):
                    source = _submit_lay_out(client, cfg, name, roots, plan.group, where, retries)
                    laid[plan.group] = source
                return client.submit(
                    _send,
                    cfg,
                    name,
                    source,
                    plan.refs,
                    workers=where,
                    allow_other_workers=False,
                    retries=retries,
                    pure=False,
                )

            return make

        def send_all() -> list[_GroupPlan]:
            done = pinned.run({p.group: (holders[p.group], send(p)) for p in plans})
            return [done[p.group] for p in plans]

        sent = await anyio.to_thread.run_sync(send_all)
        result.bytes_to_send = sum(p.missing for p in sent)
        markers = [p.marker for p in sent if p.marker]
        try:
            markers.append(await inflight.begin_push(t, (), digest, ()))
            await manifests.write_root(t, digest, root)
            record = options.record(name, number, digest, files, size)
            await refs.commit(t, record, create_only=await create_only(s))
        finally:
            await inflight.end(t, *markers)
    return result
