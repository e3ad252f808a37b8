"""S3-compatible stores that do not behave like moto: create-only writes probed, races lost.

s3rver takes ``If-None-Match: *`` and overwrites all the same; a push finds that out
once per repository (kept in the home, not in the repository) and publishes through a
claim there. Real S3 answers ``409 ConditionalRequestConflict`` to a conditional write
while another is in flight: a lost race, like a 412.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import etcetera as etc
from etcetera.engine import claims
from tests.faultproxy import FaultProxy, Rule
from tests.fixtures_s3 import MotoServer
from tests.support import RepoSpec, write_tree

pytestmark = pytest.mark.anyio

NAME = "sample"


def _keys(client: Any, bucket: str) -> list[str]:
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def _tree(root: Path, text: bytes) -> Path:
    return write_tree(root / NAME, {"data/train/a.txt": text, "data/train/b.txt": b"b" * 100})


@pytest.mark.parametrize(
    ("store", "honours"), [("s3rver", False), ("s3", True)], ids=["s3rver", "moto"]
)
async def test_create_only_is_probed_once_and_kept_in_the_home(
    request: pytest.FixtureRequest, tmp_path: Path, store: str, honours: bool
) -> None:
    spec: RepoSpec = request.getfixturevalue(f"{store}_repo")
    client = request.getfixturevalue("s3rver_client" if store == "s3rver" else "moto_s3_client")
    bucket = spec.url.removeprefix("s3://")
    home = tmp_path / "home"
    cfg = spec.config(home=home)
    await etc.aregister(_tree(tmp_path / "v1", b"one"), config=cfg)
    await etc.apush(NAME, config=cfg)
    kept = json.loads((home / ".cache" / "stores.json").read_text())
    assert kept == {json.dumps([spec.url, spec.settings["endpoint_url"]]): honours}
    keys = _keys(client, bucket)
    # Nothing of the probe is left in the repository, which holds no verdict either.
    assert not [k for k in keys if "probe" in k]
    assert bool([k for k in keys if k.startswith(claims.CLAIMS)]) is not honours
    assert f"etc-v1/refs/{NAME}/1" in keys

    # The home's answer is what the next push goes by: told the opposite, moto's push
    # claims its version, and s3rver's writes create-only (which s3rver ignores).
    (home / ".cache" / "stores.json").write_text(json.dumps({k: not v for k, v in kept.items()}))
    await etc.aregister(_tree(tmp_path / "v2", b"two"), config=cfg, force=True)
    result = await etc.apush(NAME, config=cfg, force=True)
    assert result.version == 2
    claimed = [k for k in _keys(client, bucket) if k.startswith(claims.claims_prefix(NAME, 2))]
    assert bool(claimed) is honours


async def test_conditional_request_conflict_is_a_lost_race(
    moto_server: MotoServer, s3_repo: RepoSpec, tmp_path: Path
) -> None:
    """S3's 409 ConditionalRequestConflict on the publishing write: another push won."""
    proxy = FaultProxy(moto_server.endpoint, "s3").start()
    try:
        cfg = s3_repo.config(home=tmp_path / "home", endpoint_url=proxy.url, retries=3)
        await etc.aregister(_tree(tmp_path, b"one"), config=cfg)
        proxy.inject(Rule("409", method="PUT", path=f"/etc-v1/refs/{NAME}/1", times=0))
        with pytest.raises(etc.ConcurrentPushError, match=f"another push published {NAME}@1"):
            await etc.apush(NAME, config=cfg)
        assert proxy.fired("409") == 1  # not retried: the race is lost
    finally:
        proxy.stop()
