"""Secrets kept out of the SDKs' own log records.

At DEBUG, botocore logs every request it signs: its headers (``X-Amz-Security-Token``)
and the canonical request (``x-amz-security-token:...``). An application that turns on
``logging.basicConfig(level=logging.DEBUG)`` would print the session token. A back-end
calls :func:`guard` when it builds a client: every logger of the SDKs then passes its
records through one filter, which replaces the secrets the back-end was given, and the
value of any security-token header (credentials from a profile or the environment,
which etcetera never sees), with ``****``.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "****"
#: Loggers (and their children) of the SDKs a back-end drives.
SDK_LOGGERS = ("botocore", "aiobotocore", "s3transfer", "urllib3", "aiohttp", "gcloud")
# The header's value, as botocore prints it in a dict (b'...') or a canonical request.
_TOKEN_HEADER = re.compile(
    r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)([^'\"\s,}&]+)",
)
_lock = threading.Lock()


class _Redactor(logging.Filter):
    """Rewrites a record's message (and traceback text) without its secrets."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: frozenset[str] = frozenset()

    def scrub(self, text: str) -> str:
        text = _TOKEN_HEADER.sub(lambda m: m.group(1) + MASK, text)
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # a record whose arguments do not fit its format
            text = str(record.msg)
        clean = self.scrub(text)
        if clean != text:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


_REDACTOR = _Redactor()


def guard(*secrets: str | None) -> None:
    """Filter every SDK logger that exists now, and mask ``secrets`` in their records.

    Called when a client is built, after the SDK's modules (and so their loggers) are
    imported; calling it again adds secrets and reaches loggers made since.
    """
    with _lock:
        _REDACTOR.secrets = _REDACTOR.secrets | {s for s in secrets if s}
        names = [n for n in list(logging.root.manager.loggerDict) if _is_sdk(n)]
        for name in [*SDK_LOGGERS, *names]:
            logger = logging.getLogger(name)
            if _REDACTOR not in logger.filters:
                logger.addFilter(_REDACTOR)


def _is_sdk(name: str) -> bool:
    return name.split(".", 1)[0] in SDK_LOGGERS
