"""Push and pull across the workers of a Dask cluster (``pip install 'etcetera[dask]'``).

- :func:`push`: a dataset built on many machines (each worker holding some partition
  folders, or all of them on a shared file system) goes up as **one** version. Each
  partition is scanned, hashed and uploaded by a worker that holds it; the driver only
  sees piece lists, writes the manifest root and publishes the version record last.
- :func:`pull`: the packs and blobs of a version are spread over the workers by shard
  (``etc pull --shard K/N``). Into a shared folder, every worker stages its shard in
  the same staging folder and one task then publishes the whole, verified and atomic;
  with ``per_worker=True`` each worker pulls its own shard into its own home.

Tasks are idempotent (objects are content-addressed, staged files are verified before
they are renamed into place), so Dask re-runs the task of a worker that died, and the
version is published only after every task succeeded. See ``docs/cluster.md``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from distributed import Client, Future, get_worker, wait

from ._version import __version__
from .api import apull
from .api._common import parse_ref, repository, resolve_config, transfer_config, whoami
from .api.pull import PullResult
from .engine import push as engine_push
from .engine import repo
from .engine.progress import TransferStats
from .engine.scan import HashCache
from .engine.transport import Transport
from .errors import ClusterError, ConfigError, LocalIOError, NotADatasetError
from .format.hashing import sha256_hex
from .format.manifest import ManifestRoot, PieceRef, manifest_root
from .model import check_dataset
from .settings import Config
from .store import Store, valid_name
from .sync import run

__all__ = ["PushResult", "pull", "push"]

PushResult = engine_push.PushResult
#: A folder for every worker alike, or one per worker, keyed by worker address or name.
Paths = str | os.PathLike[str] | Mapping[Any, str | os.PathLike[str]]


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
    """

    group: str
    refs: tuple[PieceRef, ...]
    starts: tuple[str, ...]
    dirs: tuple[str, ...] = ()
    missing: int = 0
    warnings: list[str] = field(default_factory=list)


def _mine(paths: Paths | None, default: Path, worker: Any = None) -> Path | None:
    """The current worker's entry of ``paths`` (``None``: it has no folder)."""
    if paths is None:
        return default
    if isinstance(paths, Mapping):
        worker = worker or get_worker()
        for key in (worker.address, worker.name, str(worker.name)):
            if key in paths:
                return Path(paths[key])
        return None
    return Path(paths)


def _discover(roots: Paths, ignore: tuple[str, ...], dask_worker: Any = None) -> _Holding | None:
    root = _mine(roots, Path(), dask_worker)
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


def _group_cache(store: Store, root: Path, group: str) -> HashCache:
    # One cache file per group: groups of one folder may be hashed at once.
    return HashCache(store.cache_file(root / "data" / group))


def _options(cfg: Config, force: bool) -> engine_push.PushOptions:
    return engine_push.PushOptions(
        force=force,
        ignore=tuple(cfg.ignore),
        pushed_by=whoami(),
        tool=f"etcetera {__version__}",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )


@dataclass
class _Laid:
    """A group laid out by the worker that holds it, kept there between the two phases."""

    root: Path
    prepared: engine_push.Prepared
    cache: HashCache
    plan: _GroupPlan


def _lay_out(cfg: Config, name: str, roots: Paths, group: str) -> _Laid:
    """Worker task, phase one: scan, hash (cached) and lay out ``group``."""
    root = _mine(roots, Path())
    if root is None:
        raise ClusterError(f"worker {get_worker().address} holds no folder of {name}")
    return anyio.run(_alay_out, cfg, name, root.resolve(), group)


async def _alay_out(cfg: Config, name: str, root: Path, group: str) -> _Laid:
    store = Store(cfg.home)
    cache = await anyio.to_thread.run_sync(_group_cache, store, root, group)
    prepared = await engine_push.prepare(
        transfer_config(cfg), root, name, _options(cfg, False), cache=cache, group=group
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
    async with repository(cfg) as backend:
        t = Transport(backend, transfer_config(cfg), TransferStats())
        missing = await engine_push.missing_objects(t, prepared.manifest)
        await engine_push.send(t, prepared, missing, name=name, cache=laid.cache)
        await repo.write_pieces(t, prepared.encoded)
    return replace(laid.plan, missing=sum(o.size for o in missing))


def _ordered(plans: Sequence[_GroupPlan]) -> list[PieceRef]:
    """All pieces in path order (each group's are already in order)."""
    pairs = [(start, ref) for p in plans for start, ref in zip(p.starts, p.refs, strict=True)]
    return [ref for _, ref in sorted(pairs, key=lambda pair: pair[0])]


class _Pinned:
    """Tasks pinned to workers by *name*, re-pinned when a worker comes back.

    The scheduler pins a task to addresses; a worker its nanny restarts keeps its name
    (and its folder, its home) under a new address, so a task pinned to the old one
    would wait forever. The driver watches, and resubmits such a task to the worker's
    new address; a worker gone for longer than ``patience`` seconds fails the call.
    """

    def __init__(self, client: Client, patience: float = 600.0) -> None:
        self.client = client
        self.patience = patience

    def addresses(self, names: Sequence[Any]) -> list[str]:
        """Current addresses of the workers called ``names``."""
        info = self.client.scheduler_info()["workers"]
        return sorted(a for a, w in info.items() if w.get("name", a) in names)

    def run(
        self, jobs: Mapping[str, tuple[Sequence[Any], Callable[[list[str]], Future[Any]]]]
    ) -> dict[str, Any]:
        """Run ``submit(addresses)`` per job (pinned to the workers named); the results."""
        futures: dict[str, Future[Any]] = {}
        pinned: dict[str, set[str]] = {}
        lost: dict[str, float] = {}

        def submit(key: str) -> None:
            names, make = jobs[key]
            where = self.addresses(names)
            if not where:
                lost.setdefault(key, time.monotonic())
                return
            lost.pop(key, None)
            pinned[key] = set(where)
            futures[key] = make(where)

        for key in jobs:
            submit(key)
        while not all(k in futures and futures[k].done() for k in jobs):
            running = [f for f in futures.values() if not f.done()]
            if running:
                with contextlib.suppress(TimeoutError):
                    wait(running, timeout=1)
            else:
                time.sleep(1)  # every job waits for a worker to come back
            live = set(self.client.scheduler_info()["workers"])
            for key in jobs:
                future = futures.get(key)
                if future is not None and (future.done() or pinned[key] & live):
                    continue
                if future is not None:
                    future.cancel()
                    del futures[key]
                submit(key)
                if key in lost and time.monotonic() - lost[key] > self.patience:
                    raise ClusterError(
                        f"worker {jobs[key][0]} holding {key or 'the files outside data/'} "
                        f"has been gone for {self.patience:.0f} s"
                    )
        return {key: futures[key].result() for key in jobs}


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
        roots = str(Store(cfg.home).location(name))
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
    pinned = _Pinned(client)
    laid: dict[str, Future[_Laid]] = {}

    def lay_out(group: str) -> Callable[[list[str]], Future[_GroupPlan]]:
        def make(where: list[str]) -> Future[_GroupPlan]:
            laid[group] = _submit_lay_out(client, cfg, name, roots, group, where, retries)
            return client.submit(_plan_of, laid[group], pure=False)

        return make

    done = pinned.run({g: (holders[g], lay_out(g)) for g in groups})
    plans: list[_GroupPlan] = [done[g] for g in groups]
    refs = _ordered(plans)
    chunk_size = transfer_config(cfg).chunk_size
    dirs = [d for p in plans for d in p.dirs]
    root = manifest_root(chunk_size, partitions, dirs, refs)
    try:
        return run(_commit, cfg, name, roots, pinned, laid, plans, holders, root, force, retries)
    finally:
        client.cancel(list(laid.values()))  # frees the laid-out groups on the workers


async def _commit(
    cfg: Config,
    name: str,
    roots: Paths,
    pinned: _Pinned,
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
    stats = TransferStats()
    result = PushResult(name, 0, digest, False, files, size, stats=stats)
    result.warnings = [w for p in plans for w in p.warnings]
    options = _options(cfg, force)
    async with repository(cfg) as backend:
        await backend.check()
        t = Transport(backend, transfer_config(cfg), stats)
        existing = await repo.versions(t, name)
        if existing:
            latest = await repo.read_record(t, name, existing[-1])
            if latest.manifest == digest:
                result.version, result.noop = latest.number, True
                return result
            if not force:
                raise engine_push.exists_error(name, backend, latest.number)
        result.version = (existing[-1] if existing else 0) + 1

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
        await repo.write_root(t, digest, root)
        await repo.publish(t, options.record(name, result.version, digest, files, size))
    return result


def _home_config(cfg: Config, homes: Paths | None) -> Config:
    home = _mine(homes, Path(cfg.home))
    if home is None:
        raise ConfigError(f"no home folder given for worker {get_worker().address}")
    return cfg.model_copy(update={"home": home.resolve()})


def _pull_shard(
    cfg: Config,
    homes: Paths | None,
    name: str,
    version: int,
    partitions: Sequence[str] | None,
    shard: tuple[int, int],
    force: bool,
) -> PullResult:
    """Worker task: pull shard ``shard`` into this worker's own home."""
    mine = _home_config(cfg, homes)
    return anyio.run(
        lambda: apull(
            name, config=mine, version=version, partitions=partitions, shard=shard, force=force
        )
    )


def _stage_shard(
    cfg: Config,
    name: str,
    version: int,
    partitions: Sequence[str] | None,
    shard: tuple[int, int],
) -> int:
    """Worker task: download shard ``shard`` into the shared staging folder; files written."""
    from .api.pull import astage

    return anyio.run(
        lambda: astage(name, config=cfg, version=version, partitions=partitions, shard=shard)
    )


def _finish(
    cfg: Config, name: str, version: int, partitions: Sequence[str] | None, force: bool
) -> PullResult:
    """Worker task: fetch whatever no shard task left, verify, publish atomically."""
    return anyio.run(
        lambda: apull(name, config=cfg, version=version, partitions=partitions, force=force)
    )


def pull(
    name: str,
    client: Client,
    *,
    version: int | None = None,
    partitions: Sequence[str] | None = None,
    config: Config | None = None,
    per_worker: bool = False,
    homes: Paths | None = None,
    force: bool = False,
    retries: int = 2,
) -> PullResult | dict[str, PullResult]:
    """Pull a version with the workers of ``client`` sharing the downloads.

    Args:
        name: dataset name (``NAME@K`` works too).
        client: a connected ``dask.distributed.Client``.
        version: the version (default: the latest, resolved once by the driver).
        partitions: only these partitions (and every file outside ``data/``).
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).
        per_worker: each worker pulls shard K/N into its own home (a training
            cluster's nodes); otherwise all workers fill one shared home.
        homes: with ``per_worker``, each worker's home by address or name (default:
            ``config.home`` on every worker, which is then local to each node).
        force: as ``etc pull --force``.
        retries: times Dask re-runs the task of a worker that failed or died.

    Returns:
        The result of the publishing task, or with ``per_worker`` each worker's result
        by address.
    """
    cfg = resolve_config(config)
    name, version = parse_ref(name, version)
    number = run(_resolve, cfg, name, version)
    info = client.scheduler_info()["workers"]
    workers = sorted(info)
    names = [info[a].get("name", a) for a in workers]  # survive a nanny's restart
    n = len(workers)
    if not n:
        raise ClusterError("the Dask cluster has no workers")
    parts = list(partitions) if partitions is not None else None
    if per_worker:

        def shard(k: int) -> Callable[[list[str]], Future[PullResult]]:
            def make(where: list[str]) -> Future[PullResult]:
                return client.submit(
                    _pull_shard,
                    cfg,
                    homes,
                    name,
                    number,
                    parts,
                    (k, n),
                    force,
                    workers=where,
                    allow_other_workers=False,
                    retries=retries,
                    pure=False,
                )

            return make

        done = _Pinned(client).run({str(k): ([names[k]], shard(k)) for k in range(n)})
        return {workers[k]: done[str(k)] for k in range(n)}
    staged = [
        client.submit(
            _stage_shard,
            cfg,
            name,
            number,
            parts,
            (k, n),
            workers=[names[k]],
            allow_other_workers=True,
            retries=retries,
            pure=False,
        )
        for k in range(n)
    ]
    wait(staged)
    client.gather(staged)
    final = client.submit(_finish, cfg, name, number, parts, force, retries=retries, pure=False)
    result: PullResult = final.result()
    return result


async def _resolve(cfg: Config, name: str, version: int | None) -> int:
    async with repository(cfg) as backend:
        t = Transport(backend, transfer_config(cfg), TransferStats())
        record = await repo.resolve(t, name, version)
    return record.number
