"""``explorer.html``: one self-contained page per run for moving through a latent space.

Plain arrays in, one HTML file out: no network, no CDN, no framework, so the page opens from the
file system years later. The data live in ``<script type="application/json">`` blocks (images as
base64 PNG or JPEG ``data:`` URLs) and two small hand-written scripts in ``explorer_assets/`` draw
them.

**MNIST page.** For each 2-D model: its test codes as a scatter coloured by class; the pointer over
the plane shows, large and live, the image the decoder draws there; a click pins it; a model switch
swaps scatter and decoder; hovering a point shows that test image beside its reconstruction.

*How the page decodes: a dense decode grid, not the decoder's weights.* Both were measured for the
lab's 2-D MLP decoder (widths 2-128-512-1024-784, three models trained 8 epochs on the built-in
digits), on a page of 2,000 points (test images 0.44 MB, each model's reconstructions 0.54-0.62 MB):

=============================================  ======================  ==================
what the page embeds per model                 base64 MB per model     page, 4 models
=============================================  ======================  ==================
weights, float32 (exact JS forward pass)       7.44                    ~32
weights, float16                               3.72                    ~18
weights, int8 + one scale per output row       1.87                    ~10.2
decode grid 64 x 64, uint8 PNG                 0.69-0.88               ~5.9 (4.8 measured)
decode grid 96 x 96, uint8 PNG                 1.27-1.69               ~8.6
decode grid 128 x 128, uint8 PNG               1.94-2.66               ~11.9
=============================================  ======================  ==================

(The measured page had one degenerate model, a collapsed weight-decay AE, whose grid packs to
0.01 MB.) The weights cost the architecture: 1.4 M parameters whatever the data, so only an 8-bit
quantisation comes near 10 MB for four models, and then with a 1.4 M multiply-add JS forward pass
per pointer move, quantisation error of its own, and a page that can run only MLPs. The grid
costs what the *images* cost: PNG stores one grid image per row, so its row filter predicts each
image from its neighbour on the grid, which looks alike (half the bytes of tiling the images).
Bilinear interpolation between the four grid images around the pointer keeps motion continuous;
against the exact decode, its mean absolute error on [0, 1] at 64 x 64 was 0.0004 at random points
of the code box and 0.0010 next to test codes (nearest-cell lookup: 0.0017 and 0.0042; 96 x 96
bilinear: 0.0003 and 0.0007), against 0.095 between the decodes of two random points: the error
is that of the uint8 quantisation itself, so a finer grid buys nothing visible. The grid also
works for any decoder handed over as a function (convolutional, VAE), which a JS forward pass
would not. Hence: a ``grid`` x ``grid`` lattice over each model's code box (default 64), one
grayscale PNG per model, bilinear lookup in the page, and coarser grids only if a page would
exceed ``max_bytes``.

**Dogs page.** The held-out photos as a strip; picking one shows its reconstruction by every model
at the SNR chosen on a slider (the SNRs the run evaluated, plus a noise-free end), with each image's
PSNR under it; then rows of sample images (the ``gauss`` part's samples and blends). Reconstructions
of 26 SNRs x several models are many images, so atlases are PNG while the page fits ``max_bytes``
and JPEG (quality 90) otherwise (``image_format="auto"``).

**Test hook.** Both pages expose ``window.aelabExplorer`` (``ready``, ``state()``, and on the MNIST
page ``toScreen(z1, z2)`` / ``fromScreen(x, y)``: CSS pixels relative to the scatter canvas's top
left corner) and the scatter canvas carries its plot box as ``data-`` attributes, so a browser test
can aim the real pointer at a known latent point and read the rendered canvas back.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import sys
import webbrowser
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from aelab import evaluate
from aelab.checkpoint import atomic_write
from aelab.errors import UserError

PAGE_NAME = "explorer.html"
DEFAULT_GRID = 64
MAX_BYTES = 10_000_000
PAD = 0.05  # the code box is the codes' extent widened by this fraction on each side
DECODE_BATCH = 4096


@dataclass
class LatentModel:
    """One 2-D model for the MNIST page: its test codes, their reconstructions and its decoder.

    ``decode`` maps (M, 2) float codes to (M, H, W) float images on [0, 1]; the page calls it once,
    in batches, on the decode grid.
    """

    name: str
    codes: np.ndarray
    reconstructions: np.ndarray
    decode: Callable[[np.ndarray], np.ndarray]


@dataclass
class ChannelModel:
    """One model for the dogs page: reconstructions of the held-out photos without and with channel noise.

    ``at_snr`` maps an SNR in dB to (reconstructions (N, 3, H, W) on [0, 1], per-image PSNR in dB).
    """

    name: str
    clean: np.ndarray
    at_snr: dict[float, tuple[np.ndarray, np.ndarray]]


# ---------------------------------------------------------------------------------------------- packing


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[0, 1] floats to the uint8 the page shows (round to nearest, so the error is at most 1/510)."""
    return np.round(np.clip(np.asarray(images, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def atlas(images: np.ndarray, cols: int) -> np.ndarray:
    """Tile uint8 images (N, H, W) or (N, H, W, 3) row-major into one picture ``cols`` images wide.

    Image ``k`` sits at column ``k % cols``, row ``k // cols``; empty cells are zero.
    """
    n, h, w = images.shape[:3]
    rows = max(1, -(-n // cols))
    out = np.zeros((rows * h, cols * w, *images.shape[3:]), dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * h : (r + 1) * h, c * w : (c + 1) * w] = images[k]
    return out


def encode_image(picture: np.ndarray, image_format: str = "png") -> str:
    """A uint8 picture (H, W) or (H, W, 3) as a ``data:`` URL the page can draw (PNG lossless, or JPEG)."""
    buf = io.BytesIO()
    img = Image.fromarray(picture)
    if image_format == "png":
        img.save(buf, format="PNG", compress_level=6)  # 9 is several times slower for a few % smaller
    elif image_format == "jpeg":
        img.save(buf, format="JPEG", quality=90, subsampling=0)
    else:
        raise ValueError(f"unknown image format {image_format!r}")
    return f"data:image/{image_format};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _json_block(element_id: str, payload: Any, css_class: str = "") -> str:
    """A JSON data block that cannot end the script early: ``<``, ``>`` and ``&`` are written as \\u escapes."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    cls = f' class="{css_class}"' if css_class else ""
    return f'<script type="application/json" id="{element_id}"{cls}>{text}</script>'


def _asset(name: str) -> str:
    return (resources.files("aelab") / "explorer_assets" / name).read_text(encoding="utf-8")


def _page(title: str, intro: str, body: str, blocks: Sequence[str], script: str) -> str:
    t = html.escape(title)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{t}</title>",
            f"<style>\n{_asset('explorer.css')}</style>",
            "</head>",
            "<body>",
            f"<header><h1>{t}</h1>\n{intro}</header>",
            f"<main>\n{body}\n</main>",
            *blocks,
            f"<script>\n{script}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _floats(values: np.ndarray) -> list[float]:
    """Codes and scores as short JSON numbers (6 significant digits: far finer than a screen pixel)."""
    return [float(f"{v:.6g}") for v in np.asarray(values, dtype=np.float64).ravel()]


# ---------------------------------------------------------------------------------------------- MNIST


def code_box(codes: np.ndarray, pad: float = PAD) -> tuple[float, float, float, float]:
    """(z1 min, z1 max, z2 min, z2 max): the codes' extent widened by ``pad`` on each side (never empty)."""
    lo, hi = np.asarray(codes, dtype=np.float64).min(0), np.asarray(codes, dtype=np.float64).max(0)
    span = np.maximum(hi - lo, 1e-6 * np.maximum(1.0, np.abs(hi) + np.abs(lo)))
    lo, hi = lo - pad * span, hi + pad * span
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def grid_codes(box: tuple[float, float, float, float], grid: int) -> np.ndarray:
    """The decode grid's nodes, (grid * grid, 2): node ``j * grid + i`` is z1 step ``i``, z2 step ``j``.

    Nodes include the box's edges (z = min + k (max - min) / (grid - 1)), so the page interpolates
    bilinearly between the four nodes around any point of the box and never extrapolates.
    """
    z1 = np.linspace(box[0], box[1], grid)
    z2 = np.linspace(box[2], box[3], grid)
    zz1, zz2 = np.meshgrid(z1, z2)  # zz[j, i] = (z1[i], z2[j])
    return np.stack([zz1.ravel(), zz2.ravel()], 1).astype(np.float32)


def decode_grid(
    decode: Callable[[np.ndarray], np.ndarray], box: tuple[float, float, float, float], grid: int
) -> np.ndarray:
    """uint8 images (grid * grid, H, W) the decoder draws at the grid's nodes (see :func:`grid_codes`)."""
    z = grid_codes(box, grid)
    parts = [np.asarray(decode(z[i : i + DECODE_BATCH]), dtype=np.float32) for i in range(0, len(z), DECODE_BATCH)]
    out = np.concatenate(parts)
    if out.ndim == 4 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim != 3 or len(out) != len(z):
        raise ValueError(f"decode must map (M, 2) codes to (M, H, W) images, got {out.shape} for M={len(z)}")
    return to_uint8(out)


def _check_mnist(
    models: Sequence[LatentModel], images: np.ndarray, labels: np.ndarray, class_names: Sequence[str]
) -> None:
    if not models:
        raise ValueError("mnist_page needs at least one model")
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W), got {images.shape}")
    n = len(images)
    if labels.shape != (n,):
        raise ValueError(f"labels must be ({n},), got {labels.shape}")
    if n and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(f"labels must index class_names (0..{len(class_names) - 1})")
    for m in models:
        if np.shape(m.codes) != (n, 2):
            raise ValueError(f"{m.name}: codes must be ({n}, 2), got {np.shape(m.codes)}")
        if np.shape(m.reconstructions) != images.shape:
            raise ValueError(f"{m.name}: reconstructions must be {images.shape}, got {np.shape(m.reconstructions)}")
        if not np.isfinite(m.codes).all():
            raise ValueError(f"{m.name}: codes must be finite")


def shown_points(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    """Which test points the page shows: all, or a fixed random subset of ``max_points`` in their original order."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))


def code_order(codes: np.ndarray, box: tuple[float, float, float, float], bins: int = 32) -> np.ndarray:
    """A permutation that walks the codes through the plane (a snake over ``bins`` x ``bins`` cells).

    Reconstructions stored one per PNG row in this order sit next to reconstructions of nearby
    codes, which look alike, so PNG's row filters predict them well (about 30% smaller than in
    test-set order).
    """
    codes = np.asarray(codes, dtype=np.float64)
    ci = np.clip(((codes[:, 0] - box[0]) / (box[1] - box[0]) * bins).astype(int), 0, bins - 1)
    cj = np.clip(((codes[:, 1] - box[2]) / (box[3] - box[2]) * bins).astype(int), 0, bins - 1)
    forward = cj % 2 == 0
    return np.lexsort((np.where(forward, codes[:, 0], -codes[:, 0]), np.where(forward, ci, bins - 1 - ci), cj))


def _mnist_model_block(k: int, m: LatentModel, shown: np.ndarray, size: tuple[int, int], grid: int) -> str:
    codes = np.asarray(m.codes, dtype=np.float64)
    box = code_box(codes)
    nodes = decode_grid(m.decode, box, grid)
    if nodes.shape[1:] != size:
        raise ValueError(f"{m.name}: decode gives {nodes.shape[1:]} images, the test images are {size}")
    order = code_order(codes[shown], box)
    rows = np.empty_like(order)
    rows[order] = np.arange(len(order))
    recon = to_uint8(np.asarray(m.reconstructions)[shown][order])
    payload = {
        "name": m.name,
        "box": list(box),
        "grid": grid,
        "gridAtlas": encode_image(nodes.reshape(len(nodes), -1)),
        "codes": _floats(codes[shown]),
        "recon": encode_image(recon.reshape(len(recon), -1)),
        "reconRows": rows.tolist(),
    }
    return _json_block(f"aelab-model-{k}", payload, "aelab-model")


def mnist_page(
    models: Sequence[LatentModel],
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    title: str,
    max_points: int = 2000,
    *,
    grid: int = DEFAULT_GRID,
    max_bytes: int = MAX_BYTES,
) -> str:
    """The MNIST explorer as one HTML string: scatter, live decoder view, pinning, model switch, point preview.

    ``images`` (N, H, W) on [0, 1] are the test images and ``labels`` (N,) index ``class_names``;
    each model holds the same N images' codes and reconstructions. At most ``max_points`` points
    are shown (a fixed subset, the same for every model); each model's code box and decode grid
    come from all N codes. A page over ``max_bytes`` is rebuilt with coarser grids (48, then 32
    nodes a side) before it is returned as it is, so a run never fails for its explorer's size.
    """
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int64)
    _check_mnist(models, images, labels, class_names)
    if grid < 2:
        raise ValueError("grid must be at least 2")
    shown = shown_points(len(images), max_points)
    h, w = images.shape[1:]
    shown_images = to_uint8(images[shown])
    meta = {
        "kind": "mnist",
        "title": title,
        "classNames": [str(c) for c in class_names],
        "labels": labels[shown].tolist(),
        "index": shown.tolist(),
        "imageSize": [int(h), int(w)],
        "images": encode_image(shown_images.reshape(len(shown), -1)),
        "models": len(models),
    }
    intro = (
        '<p class="help">Move the pointer over the plane: the large view shows the image the decoder draws at '
        "that code. Click to pin it (click again, press Escape or use <em>Unpin</em> to release). Hover a dot to see "
        "that test image beside its reconstruction. With the plane focused, the arrow keys move the probe "
        "(Shift: faster) and Enter pins.</p>"
    )
    page = ""
    for g in [grid, *[g for g in (48, 32) if g < grid]]:
        blocks = [_mnist_model_block(k, m, shown, (h, w), g) for k, m in enumerate(models)]
        page = _page(title, intro, _asset("mnist.html"), [_json_block("aelab-meta", meta), *blocks], _asset("mnist.js"))
        if len(page.encode()) <= max_bytes:
            break
    return page


# ---------------------------------------------------------------------------------------------- dogs


def image_psnr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-image PSNR in dB on [0, 1], capped for identical images: :func:`aelab.evaluate.psnr`, the one PSNR."""
    return evaluate.psnr(torch.as_tensor(np.asarray(x)), torch.as_tensor(np.asarray(y)), cap=evaluate.PSNR_CAP).numpy()


def _hwc(images: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) floats on [0, 1] -> (N, H, W, 3) uint8."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) images, got {images.shape}")
    return to_uint8(images).transpose(0, 2, 3, 1)


def _snr_key(snr: float) -> str:
    return f"{float(snr):g}"


class _OverBudget(Exception):
    """The images alone already exceed the page's byte budget (so a lossless attempt stops early)."""


def _dogs_payloads(
    photos: np.ndarray,
    models: Sequence[ChannelModel],
    samples: Mapping[str, np.ndarray],
    image_format: str,
    budget: int | None = None,
) -> tuple[dict, list[dict]]:
    n = len(photos)
    spent = 0

    def enc(x: np.ndarray, cols: int) -> str:
        nonlocal spent
        url = encode_image(atlas(_hwc(x), cols), image_format)
        spent += len(url)
        if budget is not None and spent > budget:
            raise _OverBudget
        return url

    snrs = sorted({float(s) for m in models for s in m.at_snr})
    blocks = []
    for m in models:
        if np.shape(m.clean) != photos.shape:
            raise ValueError(f"{m.name}: clean reconstructions must be {photos.shape}, got {np.shape(m.clean)}")
        at = {}
        for snr, (recon, psnr) in sorted(m.at_snr.items()):
            if np.shape(recon) != photos.shape or np.shape(psnr) != (n,):
                raise ValueError(f"{m.name} at {snr:g} dB: need {photos.shape} images and ({n},) PSNRs")
            at[_snr_key(snr)] = {"img": enc(recon, n), "psnr": _floats(psnr)}
        blocks.append(
            {"name": m.name, "clean": enc(m.clean, n), "cleanPsnr": _floats(image_psnr(m.clean, photos)), "atSnr": at}
        )
    rows = [{"label": str(label), "count": len(x), "img": enc(x, max(1, len(x)))} for label, x in samples.items()]
    meta = {
        "kind": "dogs",
        "format": image_format,
        "count": n,
        "imageSize": [int(photos.shape[2]), int(photos.shape[3])],
        "snrs": [float(f"{s:g}") for s in snrs],
        "snrKeys": [_snr_key(s) for s in snrs],
        "photos": enc(photos, n),
        "samples": rows,
        "models": len(models),
    }
    return meta, blocks


def dogs_page(
    photos: np.ndarray,
    models: Sequence[ChannelModel],
    samples: Mapping[str, np.ndarray],
    title: str,
    *,
    image_format: str = "auto",
    max_bytes: int = MAX_BYTES,
) -> str:
    """The dogs explorer as one HTML string: photo strip, every model's reconstruction under an SNR slider, samples.

    ``photos`` (N, 3, H, W) on [0, 1] are the held-out photos; each model holds their reconstructions
    noise-free and at each SNR (dB) it was evaluated at, with per-image PSNRs; ``samples`` maps a row
    label to (M, 3, H, W) images. ``image_format``: "png" (lossless), "jpeg" (quality 90, 4:4:4), or
    "auto": PNG while the page stays under ``max_bytes``, else JPEG. A full dogs run (24 photos, 26
    SNRs and the noise-free end, four models, 64 x 64) needs about 22 MB as PNG and 5 MB as JPEG.
    """
    photos = np.asarray(photos)
    if photos.ndim != 4 or photos.shape[1] != 3 or len(photos) == 0:
        raise ValueError(f"photos must be (N, 3, H, W) with N >= 1, got {photos.shape}")
    if not models:
        raise ValueError("dogs_page needs at least one model")
    formats = {"auto": ["png", "jpeg"], "png": ["png"], "jpeg": ["jpeg"]}.get(image_format)
    if formats is None:
        raise ValueError(f"image_format must be auto, png or jpeg, got {image_format!r}")
    intro = (
        '<p class="help">Pick a photo in the strip (Tab to it, Enter or Space). The slider sets the channel SNR; each '
        "model's reconstruction at that SNR is shown with its PSNR against the photo. The slider's right end is a "
        "noise-free channel.</p>"
    )
    page = ""
    for i, fmt in enumerate(formats):
        try:
            meta, blocks = _dogs_payloads(photos, models, samples, fmt, max_bytes if i + 1 < len(formats) else None)
        except _OverBudget:
            continue
        data = [
            _json_block("aelab-meta", meta),
            *[_json_block(f"aelab-model-{k}", b, "aelab-model") for k, b in enumerate(blocks)],
        ]
        page = _page(title, intro, _asset("dogs.html"), data, _asset("dogs.js"))
        if len(page.encode()) <= max_bytes:
            break
    return page


# ---------------------------------------------------------------------------------------------- files


def write_page(path: Path, html_text: str) -> Path:
    """Write the page atomically (a reader never sees half a page) and return its path."""
    path = Path(path)
    atomic_write(path, html_text)
    return path


def _has_display() -> bool:
    """Whether a graphical browser can plausibly open here: never on a Linux box without X or Wayland,
    where ``webbrowser`` would fall back to a text browser that cannot run the page's canvas."""
    if os.environ.get("BROWSER"):
        return True
    if sys.platform.startswith("linux") or sys.platform.startswith("freebsd"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def open_explorer(run_dir: Path) -> str:
    """Open ``RUN_DIR/explorer.html`` in the default browser where there is one; return a one-line message.

    A run folder without the page is a user error (one line saying what is missing).
    """
    run_dir = Path(run_dir)
    page = run_dir / PAGE_NAME
    if not page.is_file():
        where = "is not a folder" if not run_dir.is_dir() else f"has no {PAGE_NAME}"
        raise UserError(f"{run_dir} {where}: pass a run folder written by aelab mnist or aelab dogs")
    page = page.resolve()
    if _has_display():
        try:
            if webbrowser.open(page.as_uri()):
                return f"opened {page}"
        except webbrowser.Error:
            pass
    return f"{page} (no browser here: open this file in one)"
