"""The main job's plot: median prepared-call time per backend and seed scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot"]


def plot(table: Any, path: Path) -> None:
    """A horizontal bar chart of the benchmark table (a pandas DataFrame) into ``path``;
    a message instead where pandas or matplotlib is missing."""
    if not hasattr(table, "pivot"):
        print("(pandas is not installed: no plot)")
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot)")
        return
    ok = table[table["status"] == "ok"]
    pivot = ok.pivot(index="scenario", columns="backend", values="prepared_s")
    # tab20: one colour per backend (the default cycle repeats after ten)
    ax = pivot.plot.barh(figsize=(11, 7), logx=True, width=0.85, colormap="tab20")
    ax.set_xlabel("prepared call, median seconds (log scale)")
    ax.set_title("diffinterface: time per backend per seed scenario")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars
    plt.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.savefig(path, dpi=110)
    print(f"wrote {path}")
