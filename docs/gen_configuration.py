"""Regenerate docs/configuration.md from the settings (a test checks it is current)."""

from __future__ import annotations

from pathlib import Path

from pydantic.fields import FieldInfo

from etcetera.settings import Config
from etcetera.sizes import parse_size

HEADER = """# Configuration

Settings come from, highest precedence first: explicit arguments (`etc.Config(url, key=value)`,
CLI flags such as `--url`), environment variables `ETC_<KEY>` (e.g. `ETC_URL`, `ETC_CONCURRENCY`),
the TOML file (`--config FILE`, else `$ETC_CONFIG`, else `~/.etc.toml`), then the defaults below.
A missing or invalid setting is a one-line error naming the key and where its value came from
(`from environment ETC_PART_SIZE`, `from file ~/.etc.toml`, `from argument`); a misspelt key
is answered with the closest one (`did you mean concurrency?`). `etc config` shows the effective
settings and their sources, secrets masked. The frequent ones have flags of their own:
`etc -j 8 pull NAME` (`concurrency`), `etc --bwlimit 20M push NAME` (`bandwidth_limit`).

**Sizes** (`part_size`, `pack_size`, `pack_threshold`, `memory_budget`, `bandwidth_limit`, and
every other byte count) take a number of bytes or a number with a unit, in any case, with or
without a space: `K`, `M`, `G`, `T` and `KiB`, `MiB`, `GiB`, `TiB` are powers of 1024 (`20M` is
20 MiB, as rclone reads it); `KB`, `MB`, `GB`, `TB` are powers of 1000 (`64MB` is 64,000,000
bytes). Fractions are allowed when they make whole bytes: `1.5GiB`. In TOML write them as
strings: `part_size = "64MiB"`.

**Ignored names.** `ignore` adds patterns to the OS litter that is never pushed
(`ETC_IGNORE='*.tmp,*.bak'` is a comma list; TOML takes a list, `ignore = ["*.tmp"]`). To replace
the default list instead, set `ignore_defaults = false` (`ETC_IGNORE_DEFAULTS=false`): then only
`ignore` is ignored.

The cloud SDKs' own credential chains still apply when no keys are set: `AWS_*` variables,
`~/.aws`, instance roles for S3; `GOOGLE_APPLICATION_CREDENTIALS` / application-default
credentials for GCS; `STORAGE_EMULATOR_HOST` for a GCS emulator.

| key | env var | default | meaning |
|---|---|---|---|
"""


def _is_size(field: FieldInfo) -> bool:
    """Whether a setting is a byte count (it takes units: 20M, 1.5GiB)."""
    return any(getattr(m, "func", None) is parse_size for m in field.metadata)


def render() -> str:
    """The page's text."""
    rows = []
    for name, field in Config.model_fields.items():
        default = "~/.etc" if name == "home" else field.default
        if isinstance(default, tuple):
            default = ", ".join(default)
        elif isinstance(default, int) and _is_size(field) and default % (1 << 20) == 0:
            default = f"{default >> 20}MiB"
        rows.append(f"| `{name}` | `ETC_{name.upper()}` | `{default}` | {field.description} |")
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    (Path(__file__).parent / "configuration.md").write_text(render())
