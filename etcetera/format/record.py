"""Version records: ``refs/NAME/K`` says that version K of NAME is a given manifest.

A record is written once, create-only and last (after the manifest and every object it
names), so a reader never sees a version whose bytes are not all there. It also says
who pushed the version, when and with what. Read from a shared repository, a record
must name itself (its name and number are those of its key) and a SHA-256 manifest
digest; the informational fields fall back to empty when malformed (a count above
1 PiB, such as 10^4000, is malformed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import ManifestError
from . import jsontext
from .manifest import FORMAT_VERSION
from .validate import MAX_SIZE, check_hex

VERSION_KIND = "etcetera/version"


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """``refs/NAME/K``: version K of NAME is the manifest with this digest."""

    name: str
    number: int
    manifest: str
    created: str = ""
    pushed_by: str = ""
    tool: str = ""
    files: int = 0
    size: int = 0

    def to_json(self) -> bytes:
        """Bytes of the record."""
        doc = {
            "format": VERSION_KIND,
            "version": FORMAT_VERSION,
            "name": self.name,
            "number": self.number,
            "manifest": self.manifest,
            "created": self.created,
            "pushed_by": self.pushed_by,
            "tool": self.tool,
            "files": self.files,
            "size": self.size,
        }
        return json.dumps(doc, indent=1).encode()

    @classmethod
    def parse(cls, data: bytes, name: str, number: int) -> VersionRecord:
        """Parse a record read from ``refs/NAME/NUMBER`` and check it names itself."""
        doc = jsontext.loads(data, f"version record {name}@{number}")
        if not isinstance(doc, dict) or doc.get("format") != VERSION_KIND:
            raise ManifestError(f"version record {name}@{number} is not an etcetera record")
        if isinstance(doc.get("version"), int) and doc["version"] > FORMAT_VERSION:
            raise ManifestError(
                f"version record {name}@{number} is a newer format: upgrade etcetera"
            )
        if doc.get("name") != name or doc.get("number") != number:
            raise ManifestError(f"version record {name}@{number} names another version")
        manifest = check_hex(doc.get("manifest"), "version record manifest")

        def text(key: str) -> str:
            value = doc.get(key, "")
            return value if isinstance(value, str) else ""

        def count(key: str) -> int:
            value = doc.get(key, 0)
            return value if type(value) is int and 0 <= value <= MAX_SIZE else 0

        return cls(
            name,
            number,
            manifest,
            text("created"),
            text("pushed_by"),
            text("tool"),
            count("files"),
            count("size"),
        )
