"""botocore's data for the S3 client, read into plain dicts where botocore would find it."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
from botocore.loaders import Loader

from etcetera.backends.s3_data import new_loader

_NAMES = ["endpoints", "partitions", "s3/2006-03-01/service-2", "s3/2006-03-01/endpoint-rule-set-1"]


def _kinds(value: Any) -> set[type]:
    """The container types inside ``value``."""
    if isinstance(value, dict):
        return {type(value)}.union(*(_kinds(v) for v in value.values()))
    if isinstance(value, list):
        return {list}.union(*(_kinds(v) for v in value))
    return set()


@pytest.mark.parametrize("name", _NAMES)
def test_the_data_is_botocores_as_plain_dicts(name: str) -> None:
    ours, theirs = new_loader(None).load_data(name), Loader().load_data(name)
    assert ours == theirs
    assert list(ours) == list(theirs)  # in the same order
    assert OrderedDict not in _kinds(ours)
    assert OrderedDict in _kinds(theirs)


def test_the_s3_model_is_found_with_its_latest_version_and_extras() -> None:
    ours = new_loader(None).load_service_model("s3", "service-2")
    assert ours == Loader().load_service_model("s3", "service-2")


def test_the_folders_of_aws_data_path_come_first(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, tag in ((first, "first"), (second, "second")):
        folder.mkdir()
        (folder / "endpoints.json").write_text(json.dumps({"partitions": [], "tag": tag}))
    data_path = f"{first}:{second}"
    assert new_loader(data_path).load_data("endpoints")["tag"] == "first"
    assert new_loader(str(second)).load_data("endpoints")["tag"] == "second"
    assert "tag" not in new_loader("").load_data("endpoints")
