"""The dataset model: a folder with ``data/`` of partition folders and optional ``meta.json``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import NotADatasetError, PartitionNotFoundError


def check_dataset(location: Path) -> list[str]:
    """Check the dataset rules and return the partitions, sorted.

    Raises:
        NotADatasetError: one message per broken rule.
    """
    if not location.exists():
        raise NotADatasetError(f"{location} does not exist")
    if not location.is_dir():
        raise NotADatasetError(f"{location} is not a dataset: it is not a folder")
    data = location / "data"
    if not data.is_dir():
        raise NotADatasetError(f"{location} is not a dataset: it has no data/ folder")
    parts = []
    for child in data.iterdir():
        if not child.is_dir():
            raise NotADatasetError(
                f"{location} is not a dataset: data/ must hold only partition folders, "
                f"but data/{child.name} is a file"
            )
        parts.append(child.name)
    if not parts:
        raise NotADatasetError(f"{location} is not a dataset: data/ has no partition folder")
    return sorted(parts)


class Dataset:
    """A local dataset, read-only view.

    ``dataset['train']`` is the :class:`pathlib.Path` of a partition; iterating or
    ``keys()`` gives partition names. The location is resolved once, so a reader
    keeps a consistent copy while a newer version is pulled beside it.

    Args:
        location: the dataset folder.
        name: its name (default: the folder name).
        version: the pulled version number, if it came from a repository.
        shard: ``(k, n)`` when the folder holds shard ``k`` of ``n`` of that version.

    Attributes:
        location: the dataset folder, resolved.
        name: the dataset name.
        version: the pulled version number, ``None`` for a registered or created dataset.
        shard: ``(k, n)`` when this copy is shard ``k`` of ``n`` (``k`` 0-based, like a
            rank: ``(0, 4)`` .. ``(3, 4)``), pulled with ``etc pull NAME --shard K/N`` or
            ``shard=(k, n)``: its share of the files under ``data/``, with every
            partition folder and every file outside ``data/``. ``None``: not a shard.
    """

    def __init__(
        self,
        location: str | Path,
        name: str | None = None,
        version: int | None = None,
        shard: tuple[int, int] | None = None,
    ):
        path = Path(location).resolve()
        check_dataset(path)
        self.location: Path = path
        self.name: str = name or path.name
        self.version: int | None = version
        self.shard: tuple[int, int] | None = shard
        self._meta: Any = None

    @property
    def data(self) -> Path:
        """The ``data/`` folder."""
        return self.location / "data"

    def file(self, *parts: str) -> Path:
        """Path of a file of the dataset, e.g. ``ds.file('assets', 'notes.txt')``."""
        return self.location.joinpath(*parts)

    def partitions(self) -> list[str]:
        """Names of the partitions, sorted."""
        return check_dataset(self.location)

    def keys(self) -> list[str]:
        """Same as :meth:`partitions`."""
        return self.partitions()

    def values(self) -> list[Path]:
        """Paths of the partitions, in name order."""
        return [self.data / p for p in self.partitions()]

    def items(self) -> list[tuple[str, Path]]:
        """``(name, path)`` of each partition."""
        return [(p, self.data / p) for p in self.partitions()]

    def __getitem__(self, partition: str) -> Path:
        path = self.data / partition
        if "/" in partition or partition in ("", ".", "..") or not path.is_dir():
            known = ", ".join(self.partitions())
            raise PartitionNotFoundError(
                f"dataset {self.name} has no partition {partition!r} (it has: {known})"
            )
        return path

    def __contains__(self, partition: object) -> bool:
        return isinstance(partition, str) and partition in self.partitions()

    def __iter__(self) -> Iterator[str]:
        return iter(self.partitions())

    def __len__(self) -> int:
        return len(self.partitions())

    @property
    def meta(self) -> Any:
        """Contents of ``meta.json`` (``{}`` when there is none)."""
        if self._meta is None:
            path = self.location / "meta.json"
            if not path.exists():
                self._meta = {}
            else:
                try:
                    self._meta = json.loads(path.read_text(encoding="utf-8"))
                except (ValueError, UnicodeDecodeError) as exc:
                    raise NotADatasetError(f"{path} is not valid JSON: {exc}") from None
                except RecursionError:
                    raise NotADatasetError(f"{path} is nested too deeply to be read") from None
        return self._meta

    def __repr__(self) -> str:
        shard = f", shard={self.shard!r}" if self.shard is not None else ""
        return f"Dataset({self.name!r}, location={str(self.location)!r}{shard})"
