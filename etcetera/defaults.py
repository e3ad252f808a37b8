"""The default of every tunable setting, stated once.

Three layers carry these knobs: :class:`etcetera.settings.Config` (what a person sets),
:class:`etcetera.engine.config.TransferConfig` and
:class:`etcetera.backends.base.BackendOptions` (what the engine and a back-end are
handed). The engine and the back-ends must not import the settings, so the values live
here, in a module that imports nothing inside etcetera and that every layer may import.
A setting whose default is "unset" (``None``, ``False``) has no constant here.
"""

from __future__ import annotations

from typing import Final

MiB: Final = 1024 * 1024

#: Requests in flight (and connections in a back-end's pool).
CONCURRENCY: Final = 32
#: Worker threads for disk I/O and hashing.
IO_THREADS: Final = 8
#: Multipart part and download range size.
PART_SIZE: Final = 16 * MiB
#: Target size of a pack of small files.
PACK_SIZE: Final = 32 * MiB
#: Files smaller than this are packed.
PACK_THRESHOLD: Final = 4 * MiB
#: zstd level of the objects a push compresses (those a trial finds compressible).
COMPRESSION: Final = 3
#: Bytes of file data a transfer may hold in memory.
MEMORY_BUDGET: Final = 160 * MiB
#: Bytes of verified object ranges kept by the local cache (reads without a pull).
CACHE_SIZE: Final = 10 * 1024 * MiB
#: Seconds per request.
TIMEOUT: Final = 60.0
#: Seconds to connect.
CONNECT_TIMEOUT: Final = 10.0
#: Retries of a failed request, after the first attempt.
RETRIES: Final = 5
#: First retry delay, seconds.
RETRY_DELAY: Final = 0.2
#: Longest retry delay, seconds.
RETRY_MAX_DELAY: Final = 10.0
#: botocore's checksum mode.
CHECKSUMS: Final = "when_required"
#: Names of OS litter never pushed.
IGNORE: Final = (".DS_Store", "Thumbs.db", "desktop.ini", "__pycache__", ".ipynb_checkpoints")
