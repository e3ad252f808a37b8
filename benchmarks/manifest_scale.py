"""Manifests at scale (issue 8): writing and reading manifests of 10^5 to 10^7 entries.

    python benchmarks/manifest_scale.py --quick               # 10^5 and 10^6 entries
    python benchmarks/manifest_scale.py                       # 10^5, 10^6 and 10^7
    python benchmarks/manifest_scale.py --sizes 1e7 --v1-max 1e7 --noop-files 0

Part ``codec``: a synthetic manifest of N entries, shaped like a real dataset
(``data/<partition>/<dir>/<file>`` in three partitions, about 256 small files per
pack, a few multi-chunk blobs with their chunk lists, random SHA-256 digests, a few
empty and executable files, files outside ``data/``), is written and read in format
v1 (one canonical JSON document: ``Manifest.to_json`` / ``Manifest.parse``) and in
format v2 (binary columnar pieces: ``encode_manifest`` / ``decode_manifest``).
*write* is the Manifest in memory to bytes; *read* is bytes in memory to a validated
Manifest. Each size, format and direction runs in a fresh subprocess, which builds (or
loads from disk) its input first, then resets its peak RSS (``/proc/self/clear_refs``)
and measures wall and CPU seconds and peak RSS of the operation alone: ``peak`` is the
process's peak (input included), ``delta`` the peak over the RSS before the operation,
``kept`` what its result holds once garbage is collected (for a read: the Manifest in
memory). ``--repeats N`` runs each cell N times and keeps the run of median wall time.
The write step stores its bytes in a scratch folder for the read step. v1 above ``--v1-max`` entries
is not run (it needs ~10 GiB and minutes at 10^7); its row is then a linear estimate
from the largest v1 size measured, and says so.

Part ``noop``: a real tree of ``--noop-files`` 100-byte files is pushed with the
``etc`` CLI to a fresh ``file://`` repository (and moto with ``--noop-targets
file,s3``), pulled into a fresh home, then pushed and pulled again (no-op), median
of 3 (``scaling.point``).

etcetera runs from a snapshot of the package taken at the start (others edit it
meanwhile). Prints tables, writes ``results/manifest-scale-<time>.json`` and
``results/manifest-scale-latest.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from common import (
    EtcCommand,
    MiB,
    Table,
    fmt,
    machine_info,
    snapshot_etcetera,
    versions,
    write_json,
)

if TYPE_CHECKING:
    from etcetera.format.manifest import Manifest

FULL_SIZES = (100_000, 1_000_000, 10_000_000)
QUICK_SIZES = (100_000, 1_000_000)
PARTITIONS = (("test", 0.1), ("train", 0.8), ("validation", 0.1))
FILES_PER_PACK = 256
FILES_PER_DIR = 1000
CHILD_TIMEOUT = 3600.0
CODEC_HEADERS = ["entries", "format", "op", "wall s", "cpu s", "us/entry", "peak MiB",
                 "delta MiB", "kept MiB", "MB", "pieces", "note"]  # fmt: skip
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# -- the synthetic manifest (runs in the child) ---------------------------------------------


def synthetic(n: int, seed: int) -> Manifest:
    """A manifest of ``n`` files shaped like an image dataset, built directly in memory.

    Every field a reader checks is consistent (packs hold their members, blobs match
    their files, chunk lists hash to the digest), so ``Manifest.parse`` accepts it.
    Digests and ids are random bytes: building 10^7 entries must not take SHA-256 of
    10^7 real files.
    """
    from etcetera.format.hashing import CHUNK_SIZE, combine
    from etcetera.format.manifest import FileEntry, Manifest, ObjectEntry

    rng = np.random.Generator(np.random.PCG64([seed, n]))
    new = tuple.__new__
    files: list[FileEntry] = []
    objects: dict[str, ObjectEntry] = {}

    def hexes(k: int) -> list[str]:
        text = rng.bytes(32 * k).hex()
        return [text[i : i + 64] for i in range(0, 64 * k, 64)]

    # Files outside data/ form one pack; README and assets sort before data/, meta.json after.
    outside_id = hexes(1)[0]
    outside = [("README.md", 2_400), ("assets/prepare.ipynb", 48_213), ("meta.json", 310)]
    outside_digests = hexes(len(outside))
    offsets = [sum(size for _, size in outside[:i]) for i in range(len(outside))]
    outside_entries = [
        new(FileEntry, (path, size, 0o644, digest, outside_id, offset, ()))
        for (path, size), digest, offset in zip(outside, outside_digests, offsets, strict=True)
    ]
    objects[outside_id] = ObjectEntry(outside_id, "pack", sum(size for _, size in outside))
    files += outside_entries[:2]
    n_big = min(max(2, n // 200_000), max(0, n - 10))
    n_small = max(0, n - len(outside) - n_big)
    counts = [round(n_small * share) for _, share in PARTITIONS[:-1]]
    counts.append(n_small - sum(counts))
    width = max(6, len(str(n)))
    for (part, _), count in zip(PARTITIONS, counts, strict=True):
        if part == "train":
            # A few large files, one blob each, in data/train/blobs/ (sorts before d00000/).
            for k, size in enumerate(rng.integers(9 * MiB, 200 * MiB, n_big).tolist()):
                chunks = tuple(hexes(-(-size // CHUNK_SIZE)))
                digest = combine([bytes.fromhex(c) for c in chunks])
                path = f"data/train/blobs/big-{k:05d}.bin"
                files.append(new(FileEntry, (path, size, 0o644, digest, digest, 0, chunks)))
                objects[digest] = ObjectEntry(digest, "blob", size)
        sizes = rng.integers(1024, 256 * 1024, count).tolist()
        digests = hexes(count)
        pack_ids = hexes(-(-count // FILES_PER_PACK))
        for k, start in enumerate(range(0, count, FILES_PER_PACK)):
            oid = pack_ids[k]
            offset = 0
            for j in range(start, min(start + FILES_PER_PACK, count)):
                path = f"data/{part}/d{j // FILES_PER_DIR:05d}/img-{j:0{width}d}.jpg"
                mode = 0o755 if j % 9973 == 17 else 0o644
                if j % 49999 == 7:  # an empty file: no object
                    files.append(new(FileEntry, (path, 0, mode, EMPTY_SHA256, "", 0, ())))
                    continue
                size = sizes[j]
                files.append(new(FileEntry, (path, size, mode, digests[j], oid, offset, ())))
                offset += size
            if offset:
                objects[oid] = ObjectEntry(oid, "pack", offset)
    files.append(outside_entries[2])
    partitions = tuple(p for p, _ in PARTITIONS)
    return Manifest(tuple(files), objects, partitions, CHUNK_SIZE, ("assets/empty",))


def fingerprint(m: Manifest) -> str:
    """A cheap check that a decoded manifest is the one written: counts and a sample."""
    h = hashlib.sha256(f"{len(m.files)} {len(m.objects)} {m.partitions} {m.dirs}".encode())
    h.update(str(sum(f.size for f in m.files)).encode())
    for f in m.files[:: max(1, len(m.files) // 1000)]:
        h.update(repr(tuple(f)).encode())
    for oid in sorted(m.objects)[:: max(1, len(m.objects) // 100)]:
        h.update(repr(tuple(m.objects[oid])).encode())
    return h.hexdigest()[:16]


# -- the child: one measured operation -------------------------------------------------------


def _status_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> bool:
    """Reset this process's peak RSS (Linux >= 4.0), so it counts the operation alone."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _v2() -> tuple[Any, Any] | None:
    """``(encode_manifest, decode_manifest)`` of the etcetera imported, or ``None``."""
    import etcetera.format.v2 as mf

    enc, dec = getattr(mf, "encode_manifest", None), getattr(mf, "decode_manifest", None)
    return (enc, dec) if enc is not None and dec is not None else None


def _save(fmt_: str, out: Any, folder: Path) -> int:
    """Store what a write produced; return its bytes on the wire."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt_ == "v1":
        (folder / "manifest.json").write_bytes(out)
        return len(out)
    (folder / "root").write_bytes(out.root)
    names = {}
    for i, (pid, data) in enumerate(sorted(out.pieces.items())):
        (folder / f"piece-{i:06d}").write_bytes(data)
        names[f"piece-{i:06d}"] = pid
    (folder / "pieces.json").write_text(json.dumps(names))
    return len(out.root) + sum(len(d) for d in out.pieces.values())


def _load(fmt_: str, folder: Path) -> Any:
    if fmt_ == "v1":
        return (folder / "manifest.json").read_bytes()
    names: dict[str, str] = json.loads((folder / "pieces.json").read_text())
    pieces = {pid: (folder / name).read_bytes() for name, pid in names.items()}
    return (folder / "root").read_bytes(), pieces


def child(argv: list[str]) -> int:
    """``_child {write,read,probe} {v1,v2} N FOLDER SEED [--profile]``: print a JSON result."""
    direction, fmt_, n_text, folder_text, seed_text = argv[:5]
    profile = "--profile" in argv[5:]
    n, folder, seed = int(n_text), Path(folder_text), int(seed_text)
    import etcetera
    from etcetera.format.manifest import Manifest

    codec = _v2()
    if direction == "probe":
        # Which format ``etc push`` writes, for the no-op part (a look at its source).
        push_py = Path(etcetera.__file__).parent / "engine" / "push.py"
        writes = "v2" if "encode_manifest" in push_py.read_text() else "v1"
        print(json.dumps({"v2": codec is not None, "push_writes": writes}))
        return 0
    if fmt_ == "v2" and codec is None:
        print(json.dumps({"error": "this etcetera has no encode_manifest/decode_manifest"}))
        return 0
    encode, decode = codec or (None, None)
    result: dict[str, Any] = {"etcetera": etcetera.__file__, "rss_start_mib": _status_mib("VmRSS")}
    t0 = time.perf_counter()
    if direction == "write":
        gc.disable()  # 10^7 new tuples would set off many full collections: input, not measured
        manifest = synthetic(n, seed)
        gc.enable()
        result["entries"] = len(manifest.files)
        result["objects"] = len(manifest.objects)
        result["fingerprint"] = fingerprint(manifest)
        arg: Any = manifest
        op: Any = Manifest.to_json if fmt_ == "v1" else encode
    else:
        arg = _load(fmt_, folder)
        op = Manifest.parse if fmt_ == "v1" else decode
    result["input_s"] = time.perf_counter() - t0
    gc.collect()
    result["peak_reset"] = _reset_peak()
    rss0 = _status_mib("VmRSS")
    prof = cProfile.Profile() if profile else None
    cpu0, t0 = _cpu(), time.perf_counter()
    if prof is not None:
        prof.enable()
    out = op(*arg) if direction == "read" and fmt_ == "v2" else op(arg)
    if prof is not None:
        prof.disable()
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.update(wall=wall, cpu=cpu, rss_before_mib=rss0, peak_mib=peak, delta_mib=peak - rss0)
    gc.collect()
    # What the result keeps (for a read: the Manifest in memory), garbage collected.
    result["kept_mib"] = _status_mib("VmRSS") - rss0
    if prof is not None:
        text = io.StringIO()
        pstats.Stats(prof, stream=text).strip_dirs().sort_stats("tottime").print_stats(10)
        result["profile"] = text.getvalue()
    if direction == "write":
        result["bytes"] = _save(fmt_, out, folder)
        if fmt_ == "v1":  # what plain compression of the JSON would give, for comparison
            import zstandard

            result["zstd3_bytes"] = len(zstandard.ZstdCompressor(level=3).compress(out))
        if fmt_ == "v2":
            result["pieces"] = len(out.pieces)
            result["root_bytes"] = len(out.root)
    else:
        result["entries"] = len(out.files)
        result["objects"] = len(out.objects)
        result["fingerprint"] = fingerprint(out)
        result["bytes"] = len(arg) if fmt_ == "v1" else len(arg[0]) + sum(map(len, arg[1].values()))
    print(json.dumps(result))
    return 0


# -- the parent --------------------------------------------------------------------------------


def run_child(
    cmd: EtcCommand, direction: str, fmt_: str, n: int, folder: Path, seed: int, profile: bool
) -> dict[str, Any]:
    """Run one measured operation in a fresh interpreter; its JSON result or an error."""
    argv = [sys.executable, __file__, "_child", direction, fmt_, str(n), str(folder), str(seed)]
    if profile:
        argv.append("--profile")
    env = {**os.environ, **cmd.env(), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        out = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"killed at the {CHILD_TIMEOUT:.0f} s cap"}
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or [f"exit {out.returncode}"]
        return {"error": f"exit {out.returncode}: {tail[0][:200]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def parse_sizes(text: str) -> tuple[int, ...]:
    """``1e5,1e6`` -> ``(100000, 1000000)``."""
    return tuple(n for n in (int(float(x)) for x in text.split(",") if x.strip()) if n > 0)


def codec_part(
    args: argparse.Namespace, cmd: EtcCommand, work: Path, has_v2: bool
) -> list[dict[str, Any]]:
    """Write then read each size in each format; a row per (size, format, direction)."""
    rows: list[dict[str, Any]] = []
    formats = ["v1", "v2"] if has_v2 else ["v1"]
    for n in args.sizes:
        for fmt_ in formats:
            folder = work / f"n{n}" / fmt_
            if fmt_ == "v1" and n > args.v1_max:
                rows += _estimates(rows, n, args.v1_max)
                continue
            for direction in ("write", "read"):
                print(f"  {n:>12,} {fmt_} {direction} ...", end="", flush=True)
                runs = [
                    run_child(cmd, direction, fmt_, n, folder, args.seed, False)
                    for _ in range(args.repeats)
                ]
                failed = [r for r in runs if "error" in r]
                # The run of median wall time stands for all (wall is noisy on a shared machine).
                r = failed[0] if failed else sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]
                r.update(size=n, format=fmt_, direction=direction, estimate=False)
                r["walls"] = [x.get("wall") for x in runs]
                rows.append(r)
                if "error" in r:
                    print(f" FAILED: {r['error']}")
                    break
                print(
                    f" {r['wall']:.2f} s, cpu {r['cpu']:.2f} s, peak {r['peak_mib']:,.0f} MiB, "
                    f"{r['bytes'] / 1e6:,.1f} MB (input {r['input_s']:.1f} s)"
                )
            for direction in ("write", "read") if n == args.profile else ():
                # Separate runs: the profiler's overhead must not reach the figures above.
                print(f"  {n:>12,} {fmt_} {direction} under cProfile ...", flush=True)
                r = run_child(cmd, direction, fmt_, n, folder, args.seed, True)
                rows.append({**r, "size": n, "format": fmt_, "direction": f"{direction}-profile"})
            shutil.rmtree(folder, ignore_errors=True)
        _check(rows, n)
    return rows


def _check(rows: list[dict[str, Any]], n: int) -> None:
    """Every read must give back the manifest written (same entries, same fingerprint)."""
    mine = [r for r in rows if r["size"] == n and not r.get("estimate") and "error" not in r]
    prints = {r["fingerprint"] for r in mine if r["direction"] in ("write", "read")}
    if len(prints) > 1:
        print(f"  WARNING: at {n:,} the manifests read differ from those written: {prints}")
        for r in mine:
            r["note"] = "fingerprint mismatch"


def _estimates(rows: list[dict[str, Any]], n: int, v1_max: int) -> list[dict[str, Any]]:
    """v1 rows above ``--v1-max``: scaled linearly from the largest v1 size measured."""
    base = [
        r
        for r in rows
        if r["format"] == "v1"
        and r["direction"] in ("write", "read")
        and not r["estimate"]
        and "error" not in r
    ]
    if not base:
        print(f"  {n:>12,} v1 skipped (above --v1-max {v1_max:,}; no smaller v1 size to scale)")
        return []
    n0 = max(r["size"] for r in base)
    k = n / n0
    out = []
    for r in (r for r in base if r["size"] == n0):
        start = r["rss_start_mib"]  # the interpreter and its imports do not grow with n
        est = {
            "size": n,
            "format": "v1",
            "direction": r["direction"],
            "estimate": True,
            "wall": r["wall"] * k,
            "cpu": r["cpu"] * k,
            "peak_mib": start + (r["peak_mib"] - start) * k,
            "delta_mib": r["delta_mib"] * k,
            "kept_mib": r["kept_mib"] * k,
            "rss_before_mib": start + (r["rss_before_mib"] - start) * k,
            "rss_start_mib": start,
            "bytes": r["bytes"] * k,
            "note": f"ESTIMATE, not run (> --v1-max): linear from {n0:,}, likely low",
        }
        out.append(est)
    print(f"  {n:>12,} v1 skipped (above --v1-max {v1_max:,}): linear estimate from {n0:,}")
    return out


def noop_part(args: argparse.Namespace, cmd: EtcCommand, work: Path) -> list[dict[str, Any]]:
    """Push and pull a real tree, then the no-op push and pull (median of 3)."""
    from peers import Etcetera, rmtree
    from scaling import NOOP_REPEATS, point
    from workloads import Spec, generate

    n = args.noop_files
    spec = Spec("small", n, 100, 100, test_share=0.2, per_dir=FILES_PER_DIR)
    t0 = time.monotonic()
    wl = generate(spec, work / "noop-src" / "dataset", args.seed)
    print(f"noop: {n:,} x 100 B files generated in {time.monotonic() - t0:.1f} s")
    rows: list[dict[str, Any]] = []
    try:
        for kind in args.noop_targets.split(","):
            for op, m, files, size in point(
                Etcetera(cmd), kind, wl.root, work, f"noop-{kind}", True
            ):
                rows.append(
                    {
                        "target": kind,
                        "op": op,
                        "ok": m.ok,
                        "files": files,
                        "bytes": size,
                        "wall": m.wall,
                        "cpu": m.cpu,
                        "maxrss_mib": m.maxrss / MiB,
                        "repeats": NOOP_REPEATS if op.startswith("noop") else 1,
                        "note": "" if m.ok else m.output.strip()[-200:],
                    }
                )
                print(
                    f"  {kind} {op}: {m.wall:.2f} s, cpu {m.cpu:.2f} s"
                    + ("" if m.ok else " FAILED")
                )
    finally:
        rmtree(work / "noop-src")
    return rows


def codec_tables(rows: list[dict[str, Any]]) -> str:
    """The per-run table and the v1/v2 ratios."""
    t = Table(CODEC_HEADERS)
    for r in rows:
        if r["direction"] not in ("write", "read"):
            continue
        if "error" in r:
            dashes = ["-"] * (len(CODEC_HEADERS) - 4)
            t.add(f"{r['size']:,}", r["format"], r["direction"], *dashes, r["error"][:60])
            continue
        est = "~" if r.get("estimate") else ""
        t.add(
            f"{r['size']:,}",
            r["format"],
            r["direction"],
            est + fmt(r["wall"], 2),
            est + fmt(r["cpu"], 2),
            est + fmt(r["wall"] / r["size"] * 1e6, 2),
            est + fmt(r["peak_mib"], 0),
            est + fmt(r["delta_mib"], 0),
            est + fmt(r["kept_mib"], 0),
            est + fmt(r["bytes"] / 1e6, 1),
            str(r.get("pieces", "-")),
            r.get("note") or _zstd_note(r),
        )
    out = [
        "Manifest write (in memory -> bytes) and read (bytes -> validated Manifest)\n" + t.render()
    ]
    ratio = Table(["entries", "op", "v1/v2 wall", "v1/v2 cpu", "v1/v2 peak", "v1/v2 bytes", "note"])
    by = {(r["size"], r["format"], r["direction"]): r for r in rows if "error" not in r}
    for n in sorted({r["size"] for r in rows}):
        for d in ("write", "read"):
            a, b = by.get((n, "v1", d)), by.get((n, "v2", d))
            if a is None or b is None:
                continue
            ratio.add(
                f"{n:,}",
                d,
                fmt(a["wall"] / b["wall"], 1) + "x",
                fmt(a["cpu"] / b["cpu"], 1) + "x",
                fmt(a["peak_mib"] / b["peak_mib"], 1) + "x",
                fmt(a["bytes"] / b["bytes"], 1) + "x",
                "v1 estimated" if a.get("estimate") else "",
            )
    if ratio.rows:
        out.append("v1 over v2 (above 1: v2 is faster / smaller)\n" + ratio.render())
    return "\n\n".join(out)


def _zstd_note(r: dict[str, Any]) -> str:
    if "zstd3_bytes" not in r:
        return ""
    return f"JSON zstd-3: {r['zstd3_bytes'] / 1e6:,.1f} MB (not timed)"


def noop_table(rows: list[dict[str, Any]]) -> str:
    """The real-tree push, pull and no-ops."""
    t = Table(["target", "op", "files", "wall s", "cpu s", "RSS MiB", "note"])
    for r in rows:
        label = r["op"] + (f" (median of {r['repeats']})" if r["repeats"] > 1 else "")
        t.add(
            r["target"],
            label,
            f"{r['files']:,}",
            fmt(r["wall"], 2),
            fmt(r["cpu"], 2),
            fmt(r["maxrss_mib"], 0),
            r["note"][:60],
        )
    return "Real tree through the etc CLI\n" + t.render()


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="sizes 1e5,1e6")
    p.add_argument("--sizes", help="entry counts, e.g. 1e5,1e6 (default 1e5,1e6,1e7; 0: none)")
    p.add_argument("--v1-max", default="1e6", help="largest size v1 is run at (default 1e6)")
    p.add_argument(
        "--profile",
        default="1e6",
        help="size whose write and read also run under cProfile (1e6; 0: none)",
    )
    p.add_argument("--repeats", type=int, default=1, help="runs per cell, median wall (default 1)")
    p.add_argument("--noop-files", type=int, default=100_000, help="0: skip the real tree")
    p.add_argument("--noop-targets", default="file", help="comma-separated: file,s3")
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    p.add_argument("--seed", type=int, default=20240605)
    args = p.parse_args(argv)
    args.sizes = (
        parse_sizes(args.sizes) if args.sizes else (QUICK_SIZES if args.quick else FULL_SIZES)
    )
    args.v1_max = int(float(args.v1_max))
    args.profile = int(float(args.profile))
    return args


def main(argv: list[str] | None = None) -> int:
    """Run both parts, print the tables, write the JSON."""
    raw = sys.argv[1:] if argv is None else argv
    if raw[:1] == ["_child"]:
        return child(raw[1:])
    args = parse(raw)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="etc-manifest-scale-", dir=args.work))
    codec_rows: list[dict[str, Any]] = []
    noop_rows: list[dict[str, Any]] = []
    try:
        cmd, code = snapshot_etcetera(work / "snapshot")
        probe = run_child(cmd, "probe", "v2", 0, work, 0, False)
        has_v2 = bool(probe.get("v2"))
        sizes = ", ".join(f"{n:,}" for n in args.sizes) or "no"
        print(f"manifest scale: {sizes} entries; formats v1" + (" and v2" if has_v2 else ""))
        if not has_v2:
            print("  v2 not measured: this etcetera has no encode_manifest/decode_manifest")
        push_writes = probe.get("push_writes", "?")
        print(f"  etc push of this etcetera writes format {push_writes} manifests")
        codec_rows = codec_part(args, cmd, work, has_v2)
        if args.noop_files:
            noop_rows = noop_part(args, cmd, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    if codec_rows:
        print()
        print(codec_tables(codec_rows))
    for r in codec_rows:
        if r["direction"].endswith("-profile") and "profile" in r:
            what = f"{r['format']} {r['direction'][: -len('-profile')]} of {r['size']:,} entries"
            print(f"\nTop 10 by own time: {what} (cProfile)")
            print(_trim_profile(r["profile"]))
    if noop_rows:
        print()
        print(noop_table(noop_rows))
    print(f"\nmanifest scale took {elapsed / 60:.1f} min")
    doc = {
        "command": " ".join(["python", "benchmarks/manifest_scale.py", *raw]),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "elapsed_s": elapsed,
        "machine": machine_info(),
        "versions": versions(),
        "etcetera_code": code,
        "settings": {
            "sizes": args.sizes,
            "v1_max": args.v1_max,
            "seed": args.seed,
            "noop_files": args.noop_files,
            "noop_targets": args.noop_targets,
            "files_per_pack": FILES_PER_PACK,
            "partitions": PARTITIONS,
        },
        "v2_available": has_v2,
        "push_writes": push_writes,
        "codec": codec_rows,
        "noop": noop_rows,
    }
    dated, _ = write_json(doc, "manifest-scale")
    print(f"results: {dated} (and manifest-scale-latest.json)")
    return 0


def _trim_profile(text: str) -> str:
    """pstats output: its total line, then the table (drops the rest of the preamble)."""
    lines = text.strip().splitlines()
    total = [ln.strip() for ln in lines if "function calls" in ln][:1]
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
    return "\n".join(total + lines[start:])


if __name__ == "__main__":
    sys.exit(main())
