"""From raw runs to figures: medians, ratios to the best peer, goals, the table, the chart."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common import GiB, MiB, Table, fmt

#: The issue's goals (issue 5), checked on every target where etcetera and a peer ran.
SMALL_PUSH_FACTOR = 3.0
SMALL_PULL_FACTOR = 1.0
SMALL_PULL_LIMIT_FACTOR = 0.8
LARGE_FACTOR = 1.0
NOOP_SECONDS = 2.0
NOOP_FILES = 20_000
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
        if row.tool != "etcetera" or row.wall is None:
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
        and r.tool != "etcetera"
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
TOOL_LABEL = {"cp": "cp -r + sync (local limit)", "aws-cli": "aws s3 cp"}


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
            "note",
        ]
    )
    for r in rows:
        ratio = "-"
        if r.ratio is not None:
            ratio = f"{r.ratio:.2f}x {r.best_peer}"
        note = r.note
        if r.partial:
            note = f"capped: {r.files:,} files done; " + note
        if not r.peer and r.tool == "cp":
            note = "local limit; " + note
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
            note.strip("; "),
        )
    return t.render()


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
    extra: dict[str, Any] = field(default_factory=dict)


def goals(rows: list[Row], ctx: GoalContext) -> list[Goal]:
    """Check each goal of issue 5 on each target."""
    out: list[Goal] = []
    targets = sorted({r.target for r in rows}, key=lambda t: TARGET_ORDER.index(t))
    scaled = ctx.quick
    for target in targets:
        out += _ratio_goal(rows, target, "small", "push", SMALL_PUSH_FACTOR, scaled)
        out += _ratio_goal(rows, target, "small", "pull", SMALL_PULL_FACTOR, scaled)
        etc = find(rows, "etcetera", "small", target, "pull")
        cp = find(rows, "cp", "small", target, "pull")
        if etc and cp and etc.fps and cp.fps:
            ratio = etc.fps / cp.fps
            out.append(
                Goal(
                    f"small pull >= {SMALL_PULL_LIMIT_FACTOR}x cp -r + sync",
                    target,
                    ratio >= SMALL_PULL_LIMIT_FACTOR,
                    f"{etc.fps:,.0f} vs {cp.fps:,.0f} files/s = {ratio:.2f}x",
                    scaled,
                )
            )
        for direction in DIRECTIONS:
            out += _ratio_goal(rows, target, "large", direction, LARGE_FACTOR, scaled, cpu=True)
        for direction in DIRECTIONS:
            r = find(rows, "etcetera", "noop", target, direction)
            if r is None or r.wall is None:
                continue
            noop_scaled = r.files < NOOP_FILES
            out.append(
                Goal(
                    f"noop {direction} of {NOOP_FILES:,} files < {NOOP_SECONDS:.0f} s",
                    target,
                    r.wall < NOOP_SECONDS,
                    f"{r.wall:.2f} s for {r.files:,} files",
                    noop_scaled,
                )
            )
        worst = max(
            (r for r in rows if r.tool == "etcetera" and r.target == target and r.maxrss),
            key=lambda r: r.maxrss or 0,
            default=None,
        )
        if worst is not None and worst.maxrss:
            out.append(
                Goal(
                    f"peak RSS < {RSS_LIMIT // MiB} MiB",
                    target,
                    worst.maxrss < RSS_LIMIT,
                    f"highest {worst.maxrss / MiB:.0f} MiB ({worst.workload} {worst.direction})",
                    scaled,
                )
            )
    return out


def _ratio_goal(
    rows: list[Row],
    target: str,
    workload: str,
    direction: str,
    factor: float,
    scaled: bool,
    *,
    cpu: bool = False,
) -> list[Goal]:
    etc = find(rows, "etcetera", workload, target, direction)
    name = f"{workload} {direction} >= {factor:g}x best peer"
    if cpu:
        name += ", CPU/GiB <= its"
    if etc is None:
        return []
    best = best_peer(rows, workload, target, direction)
    if etc.fps is None or best is None or not best.fps:
        why = etc.note or "etcetera failed" if etc.fps is None else "no peer ran here"
        return [Goal(name, target, None, why, scaled)]
    ratio = etc.fps / best.fps
    unit = "files/s" if workload == "small" else "MB/s"
    mine = etc.fps if unit == "files/s" else etc.mbps or 0.0
    theirs = best.fps if unit == "files/s" else best.mbps or 0.0
    detail = f"{mine:,.1f} vs {theirs:,.1f} {unit} ({best.tool}) = {ratio:.2f}x"
    met = ratio >= factor
    if cpu and etc.cpu_per_gib is not None and best.cpu_per_gib is not None:
        detail += f"; CPU {etc.cpu_per_gib:.2f} vs {best.cpu_per_gib:.2f} s/GiB"
        met = met and etc.cpu_per_gib <= best.cpu_per_gib
    return [Goal(name, target, met, detail, scaled)]


def goal_summary(goal_list: list[Goal]) -> str:
    """One line: how many goals were met, and which were missed."""
    judged = [g for g in goal_list if g.met is not None]
    missed = [g for g in judged if not g.met]
    line = f"{len(judged) - len(missed)} of {len(judged)} goals met"
    if missed:
        names = sorted({f"{g.goal} ({TARGET_LABEL.get(g.target, g.target)})" for g in missed})
        line += "; MISSED: " + "; ".join(names)
    return line


def to_json(rows: list[Row], goal_list: list[Goal]) -> dict[str, Any]:
    """Rows and goals as plain data."""
    return {"summary": [asdict(r) for r in rows], "goals": [asdict(g) for g in goal_list]}


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
