"""The ``etc://`` fsspec file system (``fsspec.open('etc://NAME@K/PATH')``).

Registered through the ``fsspec.specs`` entry point, so fsspec, pandas, pyarrow,
dask and ``datasets`` open ``etc://`` URLs with no import of etcetera. Needs fsspec
(``pip install etcetera[fsspec]``).
"""

from .filesystem import EtcFileSystem

__all__ = ["EtcFileSystem"]
