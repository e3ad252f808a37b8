"""Settings as people write them: sizes with units, comma lists, misspelt keys, flags."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from etcetera import defaults
from etcetera.errors import SettingsError
from etcetera.settings import Config, load_config
from etcetera.sizes import parse_size
from tests.support import run_etc

SIZE_KEYS = ("part_size", "pack_size", "pack_threshold", "memory_budget", "bandwidth_limit")


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("20M", 20 * 2**20),
        ("1.5GiB", 3 * 2**29),
        ("512KiB", 512 * 1024),
        ("64MB", 64_000_000),
        ("1.1MB", 1_100_000),
        ("2 g", 2 * 2**30),
        ("3kb", 3000),
        ("1048576", 2**20),
        ("7B", 7),
    ],
)
def test_sizes_are_read_with_units(text: str, count: int) -> None:
    assert parse_size(text) == count


@pytest.mark.parametrize("text", ["", "M", "12x", "1.5B", "-3M", "1e3", "20 MiBs"])
def test_a_bad_size_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_size(text)


@pytest.mark.parametrize("key", SIZE_KEYS)
def test_every_size_setting_takes_units(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"ETC_{key.upper()}", "20M")
    assert getattr(load_config(), key) == 20 * 2**20
    monkeypatch.delenv(f"ETC_{key.upper()}")
    assert getattr(Config(**{key: "1.5GiB"}), key) == 3 * 2**29


def test_size_in_toml_file(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('part_size = "64MiB"\nbandwidth_limit = "20MB"\n')
    cfg = load_config(f)
    assert (cfg.part_size, cfg.bandwidth_limit) == (64 * 2**20, 20_000_000)


def test_ignore_is_a_comma_list_added_to_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETC_IGNORE", "*.tmp, *.bak")
    assert load_config().ignore == (*defaults.IGNORE, "*.tmp", "*.bak")
    monkeypatch.setenv("ETC_IGNORE", '["*.tmp"]')  # the JSON form still works
    assert load_config().ignore == (*defaults.IGNORE, "*.tmp")
    monkeypatch.setenv("ETC_IGNORE_DEFAULTS", "false")  # replaces the default list
    assert load_config().ignore == ("*.tmp",)
    monkeypatch.delenv("ETC_IGNORE")
    assert load_config().ignore == ()
    monkeypatch.delenv("ETC_IGNORE_DEFAULTS")
    assert load_config().ignore == defaults.IGNORE


def test_unknown_key_suggests_the_close_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "c.toml"
    f.write_text("concurency = 3\n")
    with pytest.raises(
        SettingsError, match=r"'concurency' \(in file .*c\.toml\): did you mean concurrency\?"
    ):
        load_config(f)
    with pytest.raises(SettingsError, match="did you mean concurrency"):
        load_config(None, {"concurency": 3})
    monkeypatch.setenv("ETC_BANDWITH_LIMIT", "20M")
    with pytest.raises(
        SettingsError, match=r"ETC_BANDWITH_LIMIT .*did you mean ETC_BANDWIDTH_LIMIT"
    ):
        load_config()
    monkeypatch.delenv("ETC_BANDWITH_LIMIT")
    monkeypatch.setenv("ETC_SOMETHING_ELSE_ENTIRELY", "1")  # another program's: left alone
    load_config()


def test_errors_name_the_source_the_value_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "absent.toml"
    monkeypatch.setenv("ETC_CONFIG", str(missing))
    monkeypatch.setenv("ETC_CONCURRENCY", "0")
    with pytest.raises(SettingsError) as caught:
        load_config()
    assert str(caught.value).endswith("(from environment ETC_CONCURRENCY)")
    assert "absent.toml" not in str(caught.value)
    monkeypatch.delenv("ETC_CONCURRENCY")
    f = tmp_path / "c.toml"
    f.write_text('memory_budget = "lots"\n')
    with pytest.raises(
        SettingsError, match=r"'memory_budget': 'lots' is not a size.*\(from file .*c\.toml\)"
    ):
        load_config(f)
    with pytest.raises(SettingsError, match=r"'retries'.*\(from argument\)"):
        load_config(None, {"retries": -1})


def test_flags_for_frequent_settings(tmp_path: Path) -> None:
    env = {**os.environ, "ETC_HOME": str(tmp_path / "home"), "ETC_CONFIG": str(tmp_path / "no")}
    shown = run_etc(env, "-j", "7", "--bwlimit", "20M", "config")
    assert shown.returncode == 0, shown.stderr
    assert "concurrency = 7  (argument)" in shown.stdout
    assert f"bandwidth_limit = {20 * 2**20}  (argument)" in shown.stdout
    long = run_etc(env, "--concurrency", "3", "config", "--json")
    assert '"value": 3' in long.stdout
    bad = run_etc(env, "--bwlimit", "fast", "config")
    assert bad.returncode != 0
    assert "'fast' is not a size" in bad.stderr


def test_config_in_code_says_what_is_wrong_in_one_line() -> None:
    with pytest.raises(
        SettingsError, match=r"'concurency' \(in argument\): did you mean concurrency\?"
    ):
        Config(concurency=3)
    with pytest.raises(SettingsError, match=r"'part_size': 'big' is not a size.*\(from argument\)"):
        Config(part_size="big")
