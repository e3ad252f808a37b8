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

from ..api import PushResult
from .pull import pull
from .push import push
from .workers import Paths

__all__ = ["Paths", "PushResult", "pull", "push"]
