"""From raw runs to figures: medians, ratios to the best peer, goals, the table, the chart."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common import GiB, MiB, Table, fmt

#: The goals of issue 13, each judged on figures measured in the same run.
#: 1: large push and pull on moto and fake-gcs.
LARGE_PEER_FACTOR = 1.2
LARGE_CEILING_FACTOR = 0.8
LARGE_PEERS = ("s5cmd", "rclone", "aws-cli")
CPU_SLACK = 0.5  # s/GiB over the raw ceiling's CPU plus one SHA-256 pass
#: 2: large push and pull on file://, against the machine limit.
MACHINE_FACTOR = 0.7
#: 3: small files.
SMALL_PUSH_FACTOR = 3.0
SMALL_PULL_FACTOR = 1.0
SMALL_PULL_CP_FACTOR = 1.0
#: 4: the no-op push and pull of 20,000 files through the CLI on moto (medians of 5).
#: etcetera's own rows: the default, and the variant with ``content_chunks`` on.
OURS_ETC = ("etcetera", "etcetera-cdc")
NOOP_FILES = 20_000
NOOP_SECONDS = {"push": 1.0, "pull": 0.5}
NOOP_RUNS = 5
#: 4, its second half: the same at 100,000 files (``noop_scale.py``, not in this run).
NOOP_SCALE_FILES = 100_000
NOOP_SCALE_SECONDS = {"push": 1.5, "pull": 0.6}
#: 5: etcetera's peak RSS on every workload.
RSS_LIMIT = 300 * MiB

WORKLOAD_ORDER = ("large", "small", "mixed", "text", "noop")
TARGET_ORDER = ("s3", "gs", "file")
DIRECTIONS = ("push", "pull")


@dataclass
class Run:
    """One measured command.

    Attributes:
        tool: tool name.
        target: ``s3``, ``gs`` or ``file``.
        workload: workload name (``noop`` for the up-to-date push and pull of ``small``).
        direction: ``push`` or ``pull``.
        round: 0-based round number.
        ok: finished, exit 0, and (pulls) every file arrived.
        partial: killed at the time cap; files and bytes count what was done by then.
        files: files moved.
        bytes: bytes moved.
        wall: seconds (pulls include ``sync_wall``).
        sync_wall: seconds of ``sync -f`` on the pulled tree after the tool exited.
        cpu: client CPU seconds.
        maxrss: client peak RSS, bytes.
        server_cpu: CPU seconds of the server meanwhile.
        peer: the tool counts as a peer of etcetera here.
        note: what went wrong, if anything.
    """

    tool: str
    target: str
    workload: str
    direction: str
    round: int
    ok: bool
    partial: bool
    files: int
    bytes: int
    wall: float
    sync_wall: float
    cpu: float
    maxrss: int
    server_cpu: float
    peer: bool
    note: str = ""


@dataclass
class Row:
    """Medians of the runs of one tool x target x workload x direction."""

    tool: str
    target: str
    workload: str
    direction: str
    runs: int
    ok: bool
    partial: bool
    peer: bool
    files: int
    bytes: int
    wall: float | None
    mbps: float | None
    fps: float | None
    cpu_per_gib: float | None
    maxrss: int | None
    server_cpu: float | None
    ratio: float | None = None
    best_peer: str | None = None
    note: str = ""
    limit_kind: str | None = None
    of_limit: float | None = None


def _median(xs: Iterable[float]) -> float | None:
    vals = list(xs)
    return statistics.median(vals) if vals else None


def summarize(runs: list[Run]) -> list[Row]:
    """Medians per cell and etcetera's ratio to the best peer."""
    groups: dict[tuple[str, str, str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.workload, r.target, r.direction, r.tool), []).append(r)
    rows: list[Row] = []
    for (workload, target, direction, tool), rs in groups.items():
        good = [r for r in rs if (r.ok or r.partial) and r.wall > 0]
        notes = sorted({r.note for r in rs if r.note})
        if not good:
            rows.append(
                Row(
                    tool,
                    target,
                    workload,
                    direction,
                    len(rs),
                    False,
                    False,
                    rs[0].peer,
                    rs[0].files,
                    rs[0].bytes,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    note="; ".join(notes) or "failed",
                )
            )
            continue
        rows.append(
            Row(
                tool=tool,
                target=target,
                workload=workload,
                direction=direction,
                runs=len(good),
                ok=all(r.ok for r in good),
                partial=any(r.partial for r in good),
                peer=good[0].peer,
                files=max(r.files for r in good),
                bytes=max(r.bytes for r in good),
                wall=_median(r.wall for r in good),
                mbps=_median(r.bytes / r.wall / 1e6 for r in good),
                fps=_median(r.files / r.wall for r in good),
                cpu_per_gib=_median(r.cpu / (r.bytes / GiB) for r in good if r.bytes)
                if workload != "noop"
                else None,
                maxrss=max(r.maxrss for r in good),
                server_cpu=_median(r.server_cpu for r in good) if target != "file" else None,
                note="; ".join(notes),
            )
        )
    for row in rows:
        if row.tool not in OURS_ETC or row.wall is None:
            continue
        best = best_peer(rows, row.workload, row.target, row.direction)
        if best is None or best.wall is None or best.fps is None or row.fps is None:
            continue
        row.best_peer = best.tool
        if row.workload == "noop":
            row.ratio = best.wall / row.wall
        else:
            row.ratio = row.fps / best.fps if best.fps else None
    rows.sort(key=_order)
    return rows


def _order(r: Row) -> tuple[int, int, int, int, str]:
    w = WORKLOAD_ORDER.index(r.workload) if r.workload in WORKLOAD_ORDER else 9
    t = TARGET_ORDER.index(r.target) if r.target in TARGET_ORDER else 9
    d = DIRECTIONS.index(r.direction) if r.direction in DIRECTIONS else 9
    return (w, t, d, 0 if r.tool == "etcetera" else 1, r.tool)


def best_peer(rows: list[Row], workload: str, target: str, direction: str) -> Row | None:
    """The fastest peer (by files/s; by wall for no-op) of a cell."""
    peers = [
        r
        for r in rows
        if r.workload == workload
        and r.target == target
        and r.direction == direction
        and r.peer
        and r.tool not in OURS_ETC
        and r.wall is not None
    ]
    if not peers:
        return None
    if workload == "noop":
        return min(peers, key=lambda r: r.wall or 0.0)
    return max(peers, key=lambda r: r.fps or 0.0)


def find(rows: list[Row], tool: str, workload: str, target: str, direction: str) -> Row | None:
    """The row of one cell, if it ran."""
    for r in rows:
        if (r.tool, r.workload, r.target, r.direction) == (tool, workload, target, direction):
            return r
    return None


TARGET_LABEL = {"s3": "moto", "gs": "fake-gcs", "file": "file"}
TOOL_LABEL = {
    "cp": "cp -r + sync (local limit)",
    "aws-cli": "aws s3 cp",
    "ceiling": "raw library ceiling",
}
#: How the ``of limit`` column names the limit a figure is divided by.
LIMIT_LABEL = {"raw": "raw", "machine": "machine", "cp": "cp+sync"}


# -- limits ---------------------------------------------------------------------------------
def _rates(wall: float, files: int, size: int) -> dict[str, float]:
    return {"wall_s": wall, "mbps": size / wall / 1e6, "files_per_s": files / wall}


def limits(rows: list[Row], machine: dict[str, Any]) -> dict[str, Any]:
    """The ``limits`` block, per target, workload and direction; sets etcetera's ``of_limit``.

    Each cell holds what was measured in this run (``raw``: the bare SDK client, the
    ``ceiling`` rows; ``cp_sync``: ``cp -r`` + ``sync -f`` of the same tree, the ``cp``
    rows; ``machine``: on ``file://``, ``cp -r`` + ``sync`` plus the bytes over SHA-256 at
    this CPU's one-core rate times its cores) and which one etcetera is measured against
    (``used``): the raw ceiling where it ran, else the machine limit on ``file://``, else
    ``cp -r`` + ``sync`` for a pull.
    """
    out: dict[str, Any] = {"machine": machine}
    hash_rate = (machine.get("sha256_mbps_cores") or 0.0) * 1e6
    for r in rows:
        if r.tool not in ("ceiling", "cp") or r.wall is None or r.workload == "noop":
            continue
        cell = out.setdefault(r.target, {}).setdefault(r.workload, {}).setdefault(r.direction, {})
        if r.tool == "ceiling":
            cell["raw"] = {
                "what": "bare aiobotocore" if r.target == "s3" else "bare gcloud-aio-storage",
                **_rates(r.wall, r.files, r.bytes),
                "cpu_s_per_gib": r.cpu_per_gib,
                "server_cpu_s": r.server_cpu,
                "maxrss": r.maxrss,
                "runs": r.runs,
            }
            continue
        cell["cp_sync"] = {**_rates(r.wall, r.files, r.bytes), "runs": r.runs}
        if r.target == "file" and hash_rate:
            hashing = r.bytes / hash_rate
            cell["machine"] = {
                "cp_sync_s": r.wall,
                "sha256_s": hashing,
                **_rates(r.wall + hashing, r.files, r.bytes),
            }
    for key, target in out.items():
        if key == "machine":
            continue
        for workload in target.values():
            for cell in workload.values():
                for kind in ("raw", "machine", "cp_sync"):
                    if kind in cell:
                        cell["used"] = kind
                        cell["mbps"] = cell[kind]["mbps"]
                        cell["files_per_s"] = cell[kind]["files_per_s"]
                        break
    for r in rows:
        if r.tool not in OURS_ETC or r.fps is None:
            continue
        cell = out.get(r.target, {}).get(r.workload, {}).get(r.direction)
        if not cell or "used" not in cell:
            continue
        # A cp -r + sync limit applies to pulls (a push to a store is not a copy).
        if cell["used"] == "cp_sync" and r.target != "file" and r.direction != "pull":
            continue
        r.limit_kind = {"raw": "raw", "machine": "machine", "cp_sync": "cp"}[cell["used"]]
        r.of_limit = r.fps / cell["files_per_s"]
    return out


def table(rows: list[Row]) -> str:
    """The main table."""
    t = Table(
        [
            "workload",
            "target",
            "dir",
            "tool",
            "n",
            "wall s",
            "MB/s",
            "files/s",
            "cpu s/GiB",
            "RSS MiB",
            "srv cpu s",
            "vs best peer",
            "of limit",
            "note",
        ]
    )
    for r in rows:
        ratio = "-"
        if r.ratio is not None:
            ratio = f"{r.ratio:.2f}x {r.best_peer}"
        of_limit = "-"
        if r.of_limit is not None and r.limit_kind is not None:
            of_limit = f"{r.of_limit:.2f} {LIMIT_LABEL[r.limit_kind]}"
        note = r.note
        if r.partial:
            note = f"capped: {r.files:,} files done; " + note
        if not r.peer and r.tool == "cp":
            note = "local limit; " + note
        if r.tool == "ceiling":
            note = "limit: bare SDK client; " + note
        t.add(
            r.workload,
            TARGET_LABEL.get(r.target, r.target),
            r.direction,
            r.tool,
            r.runs,
            fmt(r.wall, 2),
            fmt(r.mbps) if r.workload != "noop" else "-",
            fmt(r.fps, 0),
            fmt(r.cpu_per_gib, 2),
            fmt(r.maxrss / MiB if r.maxrss else None, 0),
            fmt(r.server_cpu, 2),
            ratio,
            of_limit,
            note.strip("; "),
        )
    return t.render()


LEGEND = (
    "of limit: etcetera's rate over its limit's, measured in this run: raw = the bare SDK "
    "client (the ceiling rows), machine = cp -r + sync plus SHA-256 of every byte on every "
    "core (file://), cp+sync = cp -r + sync of the tree (pulls)."
)


# -- goals ----------------------------------------------------------------------------------
GOAL_RULES = (
    f"1 large push/pull on moto and fake-gcs: MB/s >= min({LARGE_PEER_FACTOR:g}x the fastest of "
    f"s5cmd, rclone and aws-cli, {LARGE_CEILING_FACTOR:g}x the raw ceiling), and client CPU "
    f"s/GiB <= the raw ceiling's + SHA-256 on one core + {CPU_SLACK:g} s",
    f"2 large push/pull on file://: MB/s >= {MACHINE_FACTOR:g}x the machine limit "
    "(cp -r + sync, plus the bytes over SHA-256 on every core)",
    f"3 small push >= {SMALL_PUSH_FACTOR:g}x the best peer; small pull >= "
    f"{SMALL_PULL_FACTOR:g}x the best peer and >= {SMALL_PULL_CP_FACTOR:g}x cp -r + sync",
    f"4 no-op push / pull of {NOOP_FILES:,} files through the CLI on moto, medians of "
    f"{NOOP_RUNS}, process start included: < {NOOP_SECONDS['push']:g} s / "
    f"< {NOOP_SECONDS['pull']:g} s",
    f"5 etcetera's peak RSS < {RSS_LIMIT // MiB} MiB on every workload",
)


@dataclass
class Goal:
    """One goal of the issue, on one target."""

    goal: str
    target: str
    met: bool | None  # None: could not be judged
    detail: str
    scaled: bool = False

    def line(self) -> str:
        """``MET``/``MISSED``/``N/A`` and the numbers."""
        word = {True: "MET   ", False: "MISSED", None: "N/A   "}[self.met]
        scaled = " (quick sizes)" if self.scaled else ""
        where = TARGET_LABEL.get(self.target, self.target)
        return f"{word} {self.goal} on {where}{scaled}: {self.detail}"


@dataclass
class GoalContext:
    """What the goals need besides the rows."""

    quick: bool
    small_files: int
    machine: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def goals(rows: list[Row], ctx: GoalContext) -> list[Goal]:
    """Check each goal of issue 13 (1-5) on the targets it names."""
    out: list[Goal | None] = []
    targets = sorted({r.target for r in rows}, key=lambda t: TARGET_ORDER.index(t))
    for target in targets:
        if target != "file":
            out += [_large_goal(rows, target, d, ctx) for d in DIRECTIONS]
        else:
            out += [_machine_goal(rows, d, ctx) for d in DIRECTIONS]
    for target in targets:
        out += _small_goals(rows, target, ctx.quick)
    out += _noop_goals(rows)
    for target in targets:
        out += _rss_goal(rows, target, ctx.quick)
    return [g for g in out if g is not None]


def _large_goal(rows: list[Row], target: str, direction: str, ctx: GoalContext) -> Goal | None:
    """Goal 1: >= min(1.2x the fastest CLI peer, 0.8x raw); CPU <= raw + SHA-256 + 0.5 s."""
    name = f"1 large {direction}"
    etc = find(rows, "etcetera", "large", target, direction)
    if etc is None:
        return None
    if etc.mbps is None or etc.cpu_per_gib is None:
        return Goal(name, target, None, etc.note or "etcetera failed", ctx.quick)
    raw = find(rows, "ceiling", "large", target, direction)
    if raw is None or raw.mbps is None or raw.cpu_per_gib is None:
        return Goal(name, target, None, "the raw ceiling did not run", ctx.quick)
    peers = [
        r
        for t in LARGE_PEERS
        if (r := find(rows, t, "large", target, direction)) is not None and r.mbps
    ]
    best = max(peers, key=lambda r: r.mbps or 0.0, default=None)
    by_raw = LARGE_CEILING_FACTOR * raw.mbps
    need, terms = by_raw, [f"{LARGE_CEILING_FACTOR:g}x raw {raw.mbps:,.1f} = {by_raw:,.1f}"]
    if best is not None and best.mbps:
        by_peer = LARGE_PEER_FACTOR * best.mbps
        need = min(need, by_peer)
        terms.insert(0, f"{LARGE_PEER_FACTOR:g}x {best.tool} {best.mbps:,.1f} = {by_peer:,.1f}")
    else:
        terms.insert(0, "no CLI peer ran")
    sha = ctx.machine.get("sha256_s_per_gib_core", 0.0)
    cpu_cap = raw.cpu_per_gib + sha + CPU_SLACK
    fast, lean = etc.mbps >= need, etc.cpu_per_gib <= cpu_cap
    detail = (
        f"{etc.mbps:,.1f} MB/s ({etc.mbps / raw.mbps:.2f}x raw) "
        f"{'>=' if fast else '<'} {need:,.1f} = min({', '.join(terms)}); "
        f"CPU {etc.cpu_per_gib:.2f} s/GiB {'<=' if lean else '>'} {cpu_cap:.2f} "
        f"= raw {raw.cpu_per_gib:.2f} + SHA-256 {sha:.2f} + {CPU_SLACK:g}"
    )
    return Goal(name, target, fast and lean, detail, ctx.quick)


def _machine_goal(rows: list[Row], direction: str, ctx: GoalContext) -> Goal | None:
    """Goal 2: large on file:// >= 0.7x (cp -r + sync + bytes / SHA-256 on every core)."""
    name = f"2 large {direction}"
    etc = find(rows, "etcetera", "large", "file", direction)
    if etc is None:
        return None
    cp = find(rows, "cp", "large", "file", direction)
    rate = (ctx.machine.get("sha256_mbps_cores") or 0.0) * 1e6
    if etc.mbps is None or cp is None or cp.wall is None or not rate:
        why = etc.note or "etcetera failed" if etc.mbps is None else "cp -r + sync did not run"
        return Goal(name, "file", None, why, ctx.quick)
    hashing = etc.bytes / rate
    limit = etc.bytes / (cp.wall + hashing) / 1e6
    ratio = etc.mbps / limit
    detail = (
        f"{etc.mbps:,.1f} MB/s = {ratio:.2f}x {'>=' if ratio >= MACHINE_FACTOR else '<'} "
        f"{MACHINE_FACTOR:g}x the machine limit {limit:,.1f} MB/s (cp -r + sync "
        f"{cp.wall:.2f} s + SHA-256 {hashing:.2f} s on {ctx.machine.get('cores')} cores)"
    )
    return Goal(name, "file", ratio >= MACHINE_FACTOR, detail, ctx.quick)


def _small_goals(rows: list[Row], target: str, scaled: bool) -> list[Goal]:
    """Goal 3: small push >= 3x the best peer; pull >= 1x the best peer and cp -r + sync."""
    out: list[Goal] = []
    push = find(rows, "etcetera", "small", target, "push")
    if push is not None:
        best = best_peer(rows, "small", target, "push")
        name = "3 small push"
        if push.fps is None or best is None or not best.fps:
            why = push.note or "etcetera failed" if push.fps is None else "no peer ran here"
            out.append(Goal(name, target, None, why, scaled))
        else:
            ratio = push.fps / best.fps
            detail = (
                f"{push.fps:,.0f} files/s = {ratio:.2f}x {best.tool} ({best.fps:,.0f} files/s), "
                f"needs >= {SMALL_PUSH_FACTOR:g}x"
            )
            out.append(Goal(name, target, ratio >= SMALL_PUSH_FACTOR, detail, scaled))
    pull = find(rows, "etcetera", "small", target, "pull")
    if pull is not None:
        name = "3 small pull"
        if pull.fps is None:
            out.append(Goal(name, target, None, pull.note or "etcetera failed", scaled))
            return out
        parts, met = [], True
        best = best_peer(rows, "small", target, "pull")
        if best is not None and best.tool == "cp":
            pass  # on file:// the best peer is cp -r + sync itself, judged below
        elif best is not None and best.fps:
            ratio = pull.fps / best.fps
            met = met and ratio >= SMALL_PULL_FACTOR
            parts.append(f"{ratio:.2f}x {best.tool} ({best.fps:,.0f} files/s)")
        else:
            parts.append("no peer ran here")
        cp = find(rows, "cp", "small", target, "pull")
        if cp is not None and cp.fps:
            ratio = pull.fps / cp.fps
            met = met and ratio >= SMALL_PULL_CP_FACTOR
            parts.append(f"{ratio:.2f}x cp -r + sync ({cp.fps:,.0f} files/s)")
        else:
            parts.append("cp -r + sync did not run")
        judged = len(parts) > sum("did not run" in p or "no peer" in p for p in parts)
        detail = (
            f"{pull.fps:,.0f} files/s = " + ", ".join(parts) + f", needs >= {SMALL_PULL_FACTOR:g}x "
            f"and >= {SMALL_PULL_CP_FACTOR:g}x"
        )
        out.append(Goal(name, target, met if judged else None, detail, scaled))
    return out


def _noop_goals(rows: list[Row]) -> list[Goal]:
    """Goal 4: the no-op push and pull through the CLI on moto, medians of 5."""
    out: list[Goal] = []
    for direction in DIRECTIONS:
        r = find(rows, "etcetera", "noop", "s3", direction)
        if r is None or r.wall is None:
            continue
        limit = NOOP_SECONDS[direction]
        out.append(
            Goal(
                f"4 noop {direction}",
                "s3",
                r.wall < limit,
                f"{r.wall:.2f} s {'<' if r.wall < limit else '>='} {limit:g} s for "
                f"{r.files:,} files (CLI, median of {r.runs})",
                r.files < NOOP_FILES,
            )
        )
    return out


def _rss_goal(rows: list[Row], target: str, scaled: bool) -> list[Goal]:
    """Goal 5: etcetera's peak RSS under 300 MiB on every workload."""
    worst = max(
        (r for r in rows if r.tool == "etcetera" and r.target == target and r.maxrss),
        key=lambda r: r.maxrss or 0,
        default=None,
    )
    if worst is None or not worst.maxrss:
        return []
    return [
        Goal(
            "5 peak RSS",
            target,
            worst.maxrss < RSS_LIMIT,
            f"highest {worst.maxrss / MiB:.0f} MiB ({worst.workload} {worst.direction}), "
            f"needs < {RSS_LIMIT // MiB} MiB",
            scaled,
        )
    ]


def goal_summary(goal_list: list[Goal]) -> str:
    """One line: how many goals were met, and which were missed."""
    judged = [g for g in goal_list if g.met is not None]
    missed = [g for g in judged if not g.met]
    line = f"{len(judged) - len(missed)} of {len(judged)} goals met"
    if missed:
        names = sorted({f"{g.goal} ({TARGET_LABEL.get(g.target, g.target)})" for g in missed})
        line += "; MISSED: " + "; ".join(names)
    return line


def to_json(
    rows: list[Row], goal_list: list[Goal], limit_block: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Rows, goals and limits as plain data."""
    return {
        "summary": [asdict(r) for r in rows],
        "goals": [asdict(g) for g in goal_list],
        "limits": limit_block or {},
    }


def chart(rows: list[Row], path: Path, title: str) -> None:
    """Grouped bars: one panel per workload x target, push and pull side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    workloads = [w for w in WORKLOAD_ORDER if any(r.workload == w for r in rows)]
    targets = [t for t in TARGET_ORDER if any(r.target == t for r in rows)]
    tools = sorted({r.tool for r in rows}, key=lambda t: (t != "etcetera", t))
    colours = dict(
        zip(tools, plt.get_cmap("tab10").colors, strict=False)  # type: ignore[attr-defined]
    )
    fig, axes = plt.subplots(
        len(targets),
        len(workloads),
        figsize=(3.6 * len(workloads), 3.0 * len(targets)),
        squeeze=False,
    )
    for i, target in enumerate(targets):
        for j, workload in enumerate(workloads):
            ax = axes[i][j]
            metric, unit = _metric(workload)
            width = 0.8 / max(1, len(tools))
            for k, tool in enumerate(tools):
                for d, direction in enumerate(DIRECTIONS):
                    r = find(rows, tool, workload, target, direction)
                    value = getattr(r, metric) if r is not None else None
                    if value is None:
                        continue
                    ax.bar(
                        d + k * width - 0.4 + width / 2,
                        value,
                        width,
                        color=colours[tool],
                        hatch="//" if r is not None and r.partial else None,
                    )
            ax.set_xticks(range(len(DIRECTIONS)), DIRECTIONS)
            ax.set_title(f"{workload} on {TARGET_LABEL[target]}", fontsize=9)
            ax.set_ylabel(unit, fontsize=8)
            ax.tick_params(labelsize=7)
            if workload != "noop":
                ax.set_yscale("log")
    handles = [Rectangle((0, 0), 1, 1, color=colours[t]) for t in tools]
    labels = [TOOL_LABEL.get(t, t) for t in tools]
    fig.legend(handles, labels, loc="upper center", ncol=len(tools), fontsize=8)
    fig.suptitle(title, fontsize=10, y=0.005, va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _metric(workload: str) -> tuple[str, str]:
    if workload == "small":
        return "fps", "files/s (higher is better)"
    if workload == "noop":
        return "wall", "seconds (lower is better)"
    return "mbps", "MB/s (higher is better)"


def chunk_lines(rows: list[Row]) -> list[str]:
    """The large workload with ``content_chunks`` on against the default, cell by cell."""
    out = []
    for r in rows:
        if r.tool != "etcetera-cdc" or r.mbps is None:
            continue
        base = find(rows, "etcetera", r.workload, r.target, r.direction)
        if base is None or not base.mbps or not base.cpu_per_gib or not r.cpu_per_gib:
            continue
        out.append(
            f"{r.workload} {r.direction} on {r.target}: {r.mbps:,.1f} MB/s on, "
            f"{base.mbps:,.1f} off ({r.mbps / base.mbps:.2f}x); CPU {r.cpu_per_gib:.2f} "
            f"s/GiB on, {base.cpu_per_gib:.2f} off ({r.cpu_per_gib / base.cpu_per_gib:.2f}x)"
        )
    return out
