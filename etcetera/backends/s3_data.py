"""botocore's data files for the S3 client: found where botocore finds them, read as dicts.

Creating an S3 client reads botocore's endpoints (1.3 MB of JSON), the S3 service model
and its endpoint rules. botocore's own file loader parses them into ``OrderedDict``
objects: 41 ms for the endpoints alone here, against 13 ms into plain dicts, which keep
their order just the same. The dicts also weigh less on the cyclic collector: a dict
holding only strings and numbers is not tracked at all, an ``OrderedDict`` always is.

The loader is botocore's :class:`~botocore.loaders.Loader`, given a file loader through
its ``file_loader`` argument and registered as the session's ``data_loader`` component:
search paths (``AWS_DATA_PATH``, ``~/.aws/models``), versions and extras are botocore's.
One loader serves every session of the process, so its caches are filled once.
"""

from __future__ import annotations

import gzip
import json
import os
from typing import Any

from aiobotocore.session import AioSession
from botocore.loaders import JSONFileLoader, Loader

#: How botocore names its data files, in the order it tries them.
_OPENERS = ((".json", open), (".json.gz", gzip.open))

_shared: list[Loader] = []


class PlainJSONFiles(JSONFileLoader):  # type: ignore[misc]
    """botocore's JSON data files, parsed into plain dicts."""

    def load_file(self, file_path: str) -> Any:
        """The data of ``file_path`` + ``.json`` or ``.json.gz``, else ``None``.

        Args:
            file_path: the file's path without its extension, as botocore asks for it.
        """
        for ext, opener in _OPENERS:
            path = file_path + ext
            if os.path.isfile(path):
                with opener(path, "rb") as fh:
                    return json.loads(fh.read())
        return None


def data_loader(session: AioSession) -> Loader:
    """The process's loader, made on first use with the search path ``session`` is set to.

    Args:
        session: the session whose ``data_path`` (``AWS_DATA_PATH``) names the extra
            folders searched first.
    """
    if not _shared:
        _shared.append(new_loader(session.get_config_variable("data_path")))
    return _shared[0]


def new_loader(data_path: str | None) -> Loader:
    """A loader of plain dicts searching as botocore's own does (``create_loader``).

    Args:
        data_path: folders searched before ``~/.aws/models`` and botocore's own data,
            separated by ``os.pathsep`` (the ``AWS_DATA_PATH`` setting), or ``None``.
    """
    extra = None
    if data_path:
        extra = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)]
    return Loader(extra_search_paths=extra, file_loader=PlainJSONFiles())
