"""Every figure aelab draws, written once: studies pass data, these return matplotlib figures."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib

from .notebook import in_kernel

if not in_kernel():  # figures go to files; in Jupyter the notebook's own (inline) backend stays
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402


def _np_image(img: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W[, 3]) for imshow."""
    a = img.detach().float().clamp(0, 1).cpu().numpy()
    return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)


def tile(images: torch.Tensor, nrow: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Tile (N, C, H, W) images into one array, ``nrow`` images per row, ``pad`` pixels of ``fill`` apart."""
    n, c, h, w = images.shape
    ncol = math.ceil(n / nrow)
    canvas = torch.full((c, ncol * (h + pad) - pad, nrow * (w + pad) - pad), fill)
    for i, img in enumerate(images):
        r, q = divmod(i, nrow)
        canvas[:, r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = img.float().cpu()
    return _np_image(canvas)


def loss_curves(
    histories: Mapping[str, Sequence[Mapping]], ylabel: str = "loss", titles: Mapping[str, str] | None = None
) -> plt.Figure:
    """Train (solid) and held-out (dashed) loss per epoch of each model.

    One model: one panel. Several: one small panel per model on a shared log axis, so a fine-tune of
    three epochs is as readable as a plain AE of twenty-four and their levels still compare (on one
    linear axis the short curves shrink to specks under the long ones). The legend sits outside the
    curves. ``titles``: a panel title per model (default: its name).
    """
    names = list(histories)
    values = [v for h in histories.values() for e in h for v in (e["train_loss"], e["test_loss"])]
    log = bool(values) and min(values) > 0 and max(values) / min(values) > 3
    ncols = 1 if len(names) == 1 else min(4, math.ceil(math.sqrt(len(names))))
    nrows = math.ceil(len(names) / ncols)
    size = (6, 3.6) if len(names) == 1 else (2.7 * ncols, 2.1 * nrows + 0.4)
    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, sharex=False, sharey=len(names) > 1)
    flat = [a for row in axes for a in row]
    for i, (ax, name) in enumerate(zip(flat, names)):
        hist = histories[name]
        ep = [h["epoch"] for h in hist]
        marker = "o" if len(ep) <= 5 else None
        color = f"C{i % 10}" if len(names) > 1 else "C0"
        ax.plot(ep, [h["train_loss"] for h in hist], color=color, marker=marker, ms=3, label="train")
        ax.plot(ep, [h["test_loss"] for h in hist], color=color, ls="--", marker=marker, ms=3, label="held-out")
        if log:
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, nbins=4))
        if ep and max(ep) <= 5:  # a fine-tune of a few epochs: whole epochs, not a zoom around one point
            ax.set_xlim(0.5, max(ep) + 0.5)
            ax.set_xticks(range(1, max(ep) + 1))
        ax.tick_params(labelsize=7)
        if len(names) > 1:
            ax.set_title((titles or {}).get(name, name), fontsize=8)
    for ax in flat[len(names) :]:
        ax.axis("off")
    for row in axes:
        row[0].set_ylabel(ylabel, fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize=8)
    handles = [Line2D([], [], color="0.3", label="train"), Line2D([], [], color="0.3", ls="--", label="held-out")]
    labels = ["train", "held-out"]
    if len(names) == 1:
        flat[0].legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        fig.legend(handles, labels, fontsize=8, loc="upper center", ncol=2, frameon=False, bbox_to_anchor=(0.5, 1.0))
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / size[1]))
    return fig


def image_rows(rows: Sequence[tuple[str, torch.Tensor]], scale: float = 1.0) -> plt.Figure:
    """One row per (label, images in [0, 1]) pair, e.g. original / noisy / reconstructed."""
    n = max(len(imgs) for _, imgs in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(scale * n * 0.9, scale * len(rows) * 0.95), squeeze=False)
    cmap = "gray"
    for r, (label, imgs) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if c < len(imgs):
                ax.imshow(_np_image(imgs[c]), cmap=cmap, vmin=0, vmax=1)
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def scatter_codes(
    ax: plt.Axes,
    codes: np.ndarray,
    labels: np.ndarray | None,
    title: str = "",
    extent: Sequence[float] | None = None,
) -> None:
    """2-D codes coloured by class; ``extent`` draws the box a latent grid covers."""
    sc = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7, vmin=-0.5, vmax=9.5)
    if labels is not None:
        cb = plt.colorbar(sc, ax=ax, ticks=range(10), fraction=0.046, pad=0.02)
        cb.ax.tick_params(labelsize=7)
    if extent is not None:
        x0, x1, y0, y1 = _box(extent)
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="k", ls="--", lw=1))
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")


def _box(extent: Sequence[float]) -> tuple[float, float, float, float]:
    """A latent box as (z1 low, z1 high, z2 low, z2 high); a pair (lo, hi) is the square [lo, hi]^2."""
    return (extent[0], extent[1], extent[0], extent[1]) if len(extent) == 2 else tuple(extent)  # type: ignore[return-value]


def show_tiled(
    ax: plt.Axes, images: torch.Tensor, nrow: int, title: str = "", extent: Sequence[float] | None = None
) -> None:
    """Tiled images on an axis; with ``extent`` the axes read in latent coordinates."""
    img = tile(images, nrow, pad=0 if extent else 1)
    # a rectangular box is drawn square (aspect "auto"), so the tiles stay square as in the square case
    kw = {"extent": _box(extent), "aspect": "auto"} if extent else {}
    ax.imshow(img, cmap="gray", vmin=0, vmax=1, **kw)
    if not extent:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def panels(n: int, size: float = 4.0, ncols: int | None = None) -> tuple[plt.Figure, list[plt.Axes]]:
    ncols = ncols or n
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    flat = [a for row in axes for a in row]
    for a in flat[n:]:
        a.axis("off")
    return fig, flat[:n]


def latent_maps(
    codes: torch.Tensor, originals: torch.Tensor, reconstructions: torch.Tensor | None = None
) -> plt.Figure:
    """Each image (and its reconstruction, when given) above its latent: the C channel maps (S x S each)
    tiled in a square with thin neutral gaps, all channels of one code on one colour scale, with its bar.

    The gaps are left out of the colour scale (drawn as NaN, in the figure's grey), so they neither
    brighten the maps nor stretch the scale; each code's own min..max sets its scale, so a reader
    compares channels within a code directly.
    """
    n, c = codes.shape[:2]
    per_row = math.ceil(math.sqrt(c))
    rows = [("image", originals)] + ([("reconstructed", reconstructions)] if reconstructions is not None else [])
    fig, axes = plt.subplots(len(rows) + 1, n, figsize=(1.5 * n, 1.55 * (len(rows) + 1) + 0.3), squeeze=False)
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    for i in range(n):
        z = codes[i].float().cpu()
        for r, (_, images) in enumerate(rows):
            axes[r][i].imshow(_np_image(images[i]))
        lo, hi = float(z.min()), float(z.max())
        scaled = (z - lo) / max(hi - lo, 1e-8)  # tile() clips to [0, 1]; its NaN gaps pass through
        maps = tile(scaled.unsqueeze(1), per_row, fill=float("nan")) * (hi - lo) + lo
        shown = axes[-1][i].imshow(maps, cmap=cmap, vmin=lo, vmax=hi)
        bar = fig.colorbar(shown, ax=axes[-1][i], orientation="horizontal", fraction=0.08, pad=0.04)
        bar.ax.tick_params(labelsize=5, length=1.5)
        bar.locator = matplotlib.ticker.MaxNLocator(3)
        bar.update_ticks()
        for a in (row[i] for row in axes):
            a.set_xticks([])
            a.set_yticks([])
    for r, (label, _) in enumerate(rows):
        axes[r][0].set_ylabel(label, fontsize=8)
    axes[-1][0].set_ylabel("latent", fontsize=8)
    fig.subplots_adjust(wspace=0.05, hspace=0.08)
    return fig


def curves(
    x: Sequence[float],
    ys: Mapping[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    marks: Mapping[str, float] | None = None,
    styles: Mapping[str, str] | None = None,
) -> plt.Figure:
    """Line plot of several named series over ``x``; ``marks`` draws a dot at a named series' x."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for i, (name, y) in enumerate(ys.items()):
        ls = (styles or {}).get(name, "-")
        (line,) = ax.plot(x, y, ls, color=f"C{i % 10}", label=name, lw=1.4)
        if marks and name in marks:
            xm = marks[name]
            ym = np.interp(xm, x, y)
            ax.plot([xm], [ym], "o", color=line.get_color(), ms=6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def class_map(
    ax: plt.Axes,
    classes: Sequence[int],
    judged: Sequence[bool],
    n: int,
    title: str = "",
    extent: Sequence[float] | None = None,
) -> None:
    """A classifier's verdict on each cell of an ``n x n`` decoded grid (row-major, as ``tile``):
    the cell's digit on its class colour where judged real, blank grey where not."""
    cmap = plt.get_cmap("tab10")
    grey = (0.88, 0.88, 0.88)
    rgb = np.array([cmap(int(c) % 10)[:3] if ok else grey for c, ok in zip(classes, judged)]).reshape(n, n, 3)
    lo, hi = extent if extent else (-0.5, n - 0.5)
    ax.imshow(rgb, extent=(lo, hi, lo, hi), interpolation="nearest")
    step = (hi - lo) / n
    for i, (c, ok) in enumerate(zip(classes, judged)):
        if ok:
            r, q = divmod(i, n)
            ax.text(lo + (q + 0.5) * step, hi - (r + 0.5) * step, str(int(c)), ha="center", va="center", fontsize=6)
    if not extent:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(title, fontsize=9)
