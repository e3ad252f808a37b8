"""``etc cat NAME[@K] PATH`` and ``etc list NAME[@K] [PATH]``: a version's files, unpulled."""

import sys

from ._common import human, settings

_STEP = 64 * 1024 * 1024  # bytes of a large file read and written at once (whole chunks)


async def cat(ref: str, path: str, /) -> int:
    """Write a file of a version to standard output, without pulling the version.

    Every byte is verified against the manifest before it is written.

    Parameters
    ----------
    ref
        The dataset, NAME or NAME@VERSION (NAME: the latest version).
    path
        The file, relative to the dataset folder (data/train/0001.txt).
    """
    from ..api import acat, alist_files

    cfg = settings()
    listing = await alist_files(ref, path, config=cfg, remote=True)
    size = listing.entries[0].size if len(listing.entries) == 1 else None
    if size is None or listing.entries[0].path != listing.path:
        raise IsADirectoryError(f"{path} is a folder of {ref}: etc list {ref} {path} shows it")
    out = sys.stdout.buffer
    pinned = f"{listing.name}@{listing.version}"  # one version, however long the file
    for start in range(0, max(size, 1), _STEP):
        out.write(await acat(pinned, path, config=cfg, start=start, end=start + _STEP))
        out.flush()
    return 0


async def list_files(
    ref: str, path: str = "", *, remote: bool = False, recursive: bool = False, json: bool = False
) -> int:
    """``etc list NAME[@K] [PATH]``: from the local copy when it is that version, else remote."""
    from ..api import alist_files, dumps
    from ..api.schemas import document

    found = await alist_files(ref, path, config=settings(), remote=remote, recursive=recursive)
    if json:
        entries = [
            {"path": r.path, "type": "folder" if r.size is None else "file", "bytes": r.size}
            for r in found.entries
        ]
        print(
            dumps(
                document(
                    "files",
                    name=found.name,
                    version=found.version,
                    source=found.source,
                    path=found.path,
                    entries=entries,
                )
            )
        )
        return 0
    from ..errors import escape_controls

    rows = found.entries
    width = max((len(human(r.size)) for r in rows if r.size is not None), default=3)
    for r in rows:
        size = "DIR" if r.size is None else human(r.size)
        # Paths come from the repository: control characters are shown escaped.
        print(f"{size:>{width}}  {escape_controls(r.path)}{'/' if r.size is None else ''}")
    return 0
