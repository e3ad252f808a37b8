"""Byte sizes as people write them: ``20M``, ``1.5GiB``, ``512KiB``, ``64MB``, ``1048576``.

``K``, ``M``, ``G``, ``T`` alone and ``KiB``, ``MiB``, ``GiB``, ``TiB`` are powers of
1024 (rclone reads ``20M`` as 20 MiB); ``KB``, ``MB``, ``GB``, ``TB`` are powers of 1000,
as disk makers and ``du --si`` count. Case does not matter, spaces between the number
and the unit are allowed, and a trailing ``B`` alone means bytes.
"""

from __future__ import annotations

import re
from decimal import Decimal

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "m": 1 << 20,
    "g": 1 << 30,
    "t": 1 << 40,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "tib": 1 << 40,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*")


def parse_size(value: object) -> object:
    """The byte count ``value`` spells, or ``value`` unchanged when it is not a string.

    Non-strings pass through so that the field's own type check (an ``int``, bounds)
    judges them.

    Raises:
        ValueError: a string that is not a number with one of the units above, or a
            fraction of a byte (``1.5B``).
    """
    if not isinstance(value, str):
        return value
    match = _SIZE.fullmatch(value)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"{value!r} is not a size: write bytes or a number with a unit "
            "(20M, 1.5GiB, 512KiB, 64MB)"
        )
    # Decimal: 1.1MB is exactly 1,100,000 bytes, which a float product is not.
    count = Decimal(match.group(1)) * _UNITS[unit]
    if count != count.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number of bytes")
    return int(count)


def format_size(n: float) -> str:
    """Bytes for people, in powers of 1000 as disk makers count: ``1.5 MB``, ``657 B``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
