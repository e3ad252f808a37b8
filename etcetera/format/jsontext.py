"""JSON read from a repository (or a dataset a repository gave): refused in one line.

A hostile document may nest arrays 100,000 deep: Python's parser stops at its recursion
limit (about 1,000 levels, far deeper than any etcetera document) with a
``RecursionError``, which is turned here, like malformed JSON, into ``ManifestError``.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ManifestError


def loads(data: bytes | str, what: str) -> Any:
    """Parse JSON read from a repository; ``what`` names the document in the error.

    Raises:
        ManifestError: not valid JSON, or nested deeper than the parser goes.
    """
    try:
        return json.loads(data)
    except RecursionError:
        raise ManifestError(f"{what} is nested too deeply to be read") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{what} is not valid JSON ({exc})") from None
