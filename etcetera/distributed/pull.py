"""A version pulled by the workers of a Dask cluster, shard by shard (:func:`pull`).

Into a shared home, every worker stages its shard in the same staging folder and one
task then publishes the whole, verified and atomic; with ``per_worker=True`` each
worker pulls its own shard into its own home.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import anyio
from distributed import Client, Future, get_worker, wait

from ..api import PullResult, apull, parse_ref, resolve_config, session
from ..api.pull import astage
from ..engine import refs
from ..errors import ClusterError, ConfigError
from ..settings import Config
from ..sync import run
from .workers import Paths, Pinned, mine


def _home_config(cfg: Config, homes: Paths | None) -> Config:
    home = mine(homes, Path(cfg.home))
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

        done = Pinned(client).run({str(k): ([names[k]], shard(k)) for k in range(n)})
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
    async with session(cfg) as s:
        record = await refs.resolve(s.transport, name, version)
    return record.number
