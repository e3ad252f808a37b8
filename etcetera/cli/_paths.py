"""Paths as a person keeps them: ``~/.etc/sample``, not the version folder it links to."""

from __future__ import annotations

from pathlib import Path


def tilde(path: str | Path) -> str:
    """``path`` with the user's home folder written ``~``."""
    text, home = str(path), str(Path.home())
    if home not in ("", "/") and (text == home or text.startswith(home + "/")):
        return "~" + text[len(home) :]
    return text


def kept(home: Path, name: str) -> str:
    """The path of a local dataset that stays valid across pulls: ``HOME/NAME``.

    ``HOME/NAME`` is a link to the version folder of the moment (``.versions/...``),
    which a later pull replaces; ``etc info`` shows that folder.
    """
    return tilde(Path(home) / name)
