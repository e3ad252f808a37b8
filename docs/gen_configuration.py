"""Regenerate docs/configuration.md from the settings (a test checks it is current)."""

from __future__ import annotations

from pathlib import Path

from etcetera.settings import Config

HEADER = """# Configuration

Settings come from, highest precedence first: explicit arguments (`etc.Config(url, key=value)`,
CLI flags such as `--url`), environment variables `ETC_<KEY>` (e.g. `ETC_URL`, `ETC_CONCURRENCY`),
the TOML file (`--config FILE`, else `$ETC_CONFIG`, else `~/.etc.toml`), then the defaults below.
A missing or invalid setting is a one-line error naming the key and the file. `etc config` shows
the effective settings, secrets masked.

The cloud SDKs' own credential chains still apply when no keys are set: `AWS_*` variables,
`~/.aws`, instance roles for S3; `GOOGLE_APPLICATION_CREDENTIALS` / application-default
credentials for GCS; `STORAGE_EMULATOR_HOST` for a GCS emulator.

| key | env var | default | meaning |
|---|---|---|---|
"""


def render() -> str:
    """The page's text."""
    rows = []
    for name, field in Config.model_fields.items():
        default = "~/.etc" if name == "home" else field.default
        if isinstance(default, tuple):
            default = ", ".join(default)
        rows.append(f"| `{name}` | `ETC_{name.upper()}` | `{default}` | {field.description} |")
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    (Path(__file__).parent / "configuration.md").write_text(render())
