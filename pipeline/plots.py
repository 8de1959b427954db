"""Plots drawn with matplotlib into uint8 arrays: the KL heatmap, the clusters scatter, curves against epoch.

Each function takes plain arrays and returns an (H, W, 3) uint8 picture (or
PNG bytes), the same pixels for the same inputs; no files. matplotlib is
imported when a plot is drawn, never by planning.
"""

from __future__ import annotations

import io
import threading

import numpy as np

__all__ = ["figure", "to_array", "to_png", "kl_heatmap", "scatter", "curves", "COLORS"]

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf")  # matplotlib's tab10, one per class or run


def figure(width: float, height: float, dpi: int = 100):
    """Return a matplotlib Figure (Agg, constrained layout) of `width` x `height` inches."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=dpi, layout="constrained")


def to_array(fig) -> np.ndarray:
    """Return the figure's pixels as (H, W, 3) uint8."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def to_png(fig) -> bytes:
    """Return the figure as PNG bytes without a timestamp or software tag (same figure, same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def kl_heatmap(kl: np.ndarray, epochs, rows, *, active_kl: float, title: str = "") -> np.ndarray:
    """Return a heatmap of KL (latents x epochs, nats) with latents in `rows` order, those below `active_kl`
    at the last epoch marked as inactive.

    kl : (epochs, latent_dim) KL per latent at each epoch.
    """
    kl = np.asarray(kl, np.float64)[:, list(rows)].T  # (rows, epochs)
    fig = figure(max(4.0, min(12.0, 2.5 + 0.12 * len(epochs))), max(2.0, 1.0 + 0.28 * len(rows)))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(kl, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0.0)
    fig.colorbar(image, ax=ax, label="KL (nats)")
    ax.set_yticks(range(len(rows)), [f"z{d}" + ("" if kl[r, -1] >= active_kl else " (inactive)")
                                     for r, d in enumerate(rows)])
    for label, value in zip(ax.get_yticklabels(), kl[:, -1]):
        label.set_color("black" if value >= active_kl else "gray")
    ticks = np.unique(np.linspace(0, len(epochs) - 1, min(len(epochs), 10)).round().astype(int))
    ax.set_xticks(ticks, [str(epochs[t]) for t in ticks])
    ax.set_xlabel("epoch")
    ax.set_title(title or "KL per latent by epoch")
    return to_array(fig)


def scatter(points: np.ndarray, labels, classes, *, limits, axes: tuple[str, str], title: str = "") -> np.ndarray:
    """Return a scatter of 2-D points, one colour per class (with a legend), on fixed axis `limits`.

    The clusters view draws one per checkpoint with the same classes, limits, axes and title. Nothing else
    moves the layout, so each thread keeps its last figure and moves only the points: the same pixels as a new
    figure (tested), in 56 ms instead of 144 for 2,000 codes here."""
    points = np.asarray(points, np.float64)
    labels = None if labels is None else np.asarray([str(v) for v in labels])
    key = (None if labels is None else tuple(classes), tuple(map(tuple, limits)), tuple(axes), title)
    kept = getattr(_SCATTER, "kept", None)
    if kept is not None and kept[0] == key:
        _, canvas, collections = kept
        for collection, chosen in zip(collections, _by_class(labels, classes, len(points))):
            collection.set_offsets(points[chosen])
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()
    fig = figure(4.6, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    if labels is None:
        collections = [ax.scatter(points[:, 0], points[:, 1], s=6, c=COLORS[0], alpha=0.6, linewidths=0)]
    else:
        collections = [ax.scatter(points[chosen, 0], points[chosen, 1], s=6, color=COLORS[k % len(COLORS)],
                                  alpha=0.6, linewidths=0, label=name)
                       for k, (name, chosen) in enumerate(zip(classes, _by_class(labels, classes, len(points))))]
        ax.legend(loc="upper right", fontsize=7, markerscale=2, frameon=True)
    (x0, x1), (y0, y1) = limits
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    pixels = to_array(fig)
    fig.set_layout_engine("none")  # laid out once: a new draw keeps every position
    _SCATTER.kept = (key, fig.canvas, collections)
    return pixels


_SCATTER = threading.local()  # each thread's last scatter figure (a dask worker draws in several threads)


def _by_class(labels, classes, n: int) -> list:
    """Return a boolean mask per class of `labels` (one mask of all points without labels)."""
    return [np.ones(n, bool)] if labels is None else [labels == name for name in classes]


def curves(series: dict, *, names, title_of=str, colors=None, width_each: float = 3.2, ylim=None):
    """Return a Figure of one panel per name in `names`, each with a line per series.

    series : {series label: {name: (epochs, values)}}; a lone series draws without a legend.
    ylim : (lo, hi) of every panel, or None to fit the values.
    """
    fig = figure(width_each * max(1, len(names)), 2.6)
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        for k, (label, values) in enumerate(series.items()):
            if name in values:
                xs, ys = values[name]
                ax.plot(xs, ys, marker="." if len(xs) < 50 else None, label=label,
                        color=(colors or COLORS)[k % len(colors or COLORS)])
        ax.set_title(title_of(name))
        ax.set_xlabel("epoch")
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
        if len(series) > 1 and i == 0:
            ax.legend(fontsize=7)
    return fig
