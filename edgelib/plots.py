"""Figures shared by several chapters."""

from __future__ import annotations

from .course import CHAPTERS, STAGES, written


def edge_cloud_map(chapters=CHAPTERS, ax=None, available=None, fontsize=7.5):
    """Draw the path data source -> edge device -> edge server -> cloud -> storage
    with each chapter's number placed under the stages it works on.

    Chapters whose number is not in `available` (by default the notebooks
    present in chapters/, see `course.written`) are drawn in grey italics,
    marked "planned". `fontsize`: of the chapter labels."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    available = written() if available is None else frozenset(available)
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 3.6), dpi=80)
    colours = ("#d9ead3", "#cfe2f3", "#fff2cc", "#ead1dc", "#eeeeee")
    width, gap = 1.7, 0.55
    for i, (stage, colour) in enumerate(zip(STAGES, colours, strict=True)):
        x0 = i * (width + gap)
        ax.add_patch(FancyBboxPatch((x0, 0), width, 1, boxstyle="round,pad=0.05",
                                    fc=colour, ec="#444444"))
        ax.text(x0 + width / 2, 0.5, stage, ha="center", va="center", fontsize=11,
                weight="bold")
        if i:
            ax.add_patch(FancyArrowPatch((x0 - gap + 0.05, 0.5), (x0 - 0.05, 0.5),
                                         arrowstyle="-|>", mutation_scale=14, color="#444444"))
        here = [c for c in chapters if stage in c.stages]
        for k, c in enumerate(here):
            ready = c.number in available
            ax.text(x0 + 0.02, -0.25 - 0.22 * k,
                    f"{c.number:02d} {c.title}" + ("" if ready else " (planned)"),
                    fontsize=fontsize, va="top", color="black" if ready else "#888888",
                    style="normal" if ready else "italic")
    rows = max(sum(stage in c.stages for c in chapters) for stage in STAGES)
    ax.set_xlim(-0.2, len(STAGES) * (width + gap))
    ax.set_ylim(-0.45 - 0.22 * rows, 1.2)
    ax.set_axis_off()
    ax.set_title("Where each chapter works, from the sensor to the cloud"
                 + ("" if all(c.number in available for c in chapters)
                    else "\n(grey, in italics: planned chapters, not written yet)"))
    return ax
