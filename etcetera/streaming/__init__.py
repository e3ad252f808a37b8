"""Streaming a version's files for training, without pulling them.

:func:`astream` (``etcetera.stream`` in sync code) pins a version and gives a
:class:`Stream`: an iterable of :class:`Sample` ``(path, data)`` in a deterministic,
coalesced shuffle (:mod:`.order`), split into equal disjoint shares across ranks and
data loader workers, prefetched within the byte budget (:mod:`.reader`), and resumable
mid-epoch through ``state_dict()`` / ``load_state_dict()``. It works as a PyTorch
``IterableDataset`` without etcetera depending on PyTorch.
"""

from .pin import astream
from .reader import Sample
from .stream import STATE_FORMAT, Stream

__all__ = ["STATE_FORMAT", "Sample", "Stream", "astream"]
