"""``aelab export RUN_DIR --data DIR --out codes.npz``: a finished run's codes, for other tools.

People want the latent space in their own notebooks (UMAP, clustering, a classifier on the codes)
without importing aelab's models. The run folder says how to rebuild each model (the same way
``aelab evaluate`` does); every image of ``--data`` is encoded by every finished model, and one
``.npz`` holds the result, readable with ``numpy.load(path)`` alone (no pickles):

- ``codes/<model>``: float32 ``(N, ...)``, the model's code of each image: the encoder's output, so
  for noisy-channel models the code before power normalisation and noise; for VAEs the mean;
- ``labels`` (int64) for IDX folders, or ``names`` (the photos' paths relative to ``--data``);
- ``held_out`` (bool): the images the studies hold out (IDX test files, the photos' test split);
- ``models``: the model names, in the order of ``codes/...``;
- ``meta``: a JSON string (aelab version, run folder, data source, and per model its class,
  input scaling, ``metrics_key`` and code shape).

Row ``i`` of every array is the same image.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aelab.data.scaling import SCALINGS
from aelab.errors import UserError
from aelab.evaluate import Prepare
from aelab.evaluate_run import load_labelled_images, load_run_models
from aelab.runtime import resolve_device


@torch.no_grad()
def encode_images(
    model: nn.Module, images: torch.Tensor, prepare: Prepare, device: torch.device, batch_size: int
) -> np.ndarray:
    """The model's codes of uint8 ``images``, in batches, as float32 on the CPU."""
    model.eval()
    encode = getattr(model, "encode", None)
    parts = []
    for i in range(0, len(images), batch_size):
        x = prepare(images[i : i + batch_size].to(device))
        z = encode(x) if callable(encode) else model(x)["z"]
        parts.append(z.float().cpu())
    return torch.cat(parts).numpy()


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` into a temporary file beside ``path``, then one rename: a reader never
    sees half a file, and an interrupted export leaves any older file as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_codes(
    run_dir: str | Path,
    data: str | Path,
    out: str | Path,
    device: str = "auto",
    batch_size: int = 256,
    limit: int | None = None,
) -> Path:
    """Encode every image of ``data`` with every finished model of ``run_dir``; write ``out`` (.npz)."""
    from aelab import __version__

    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be >= 1, got {limit}")
    out = Path(out).expanduser()
    if out.suffix != ".npz":
        raise UserError(f"--out {out}: the codes are written as a .npz file; give a name ending in .npz")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name ending in .npz")
    dev = resolve_device(device)
    models, notes = load_run_models(run_dir, dev)
    shapes = {tuple(m.image_shape) for _, m in models.values()}
    if len(shapes) > 1:
        raise UserError(f"{run_dir}: the models take images of different shapes ({sorted(shapes)})")
    evaluation = load_labelled_images(data, shapes.pop(), limit)
    images = evaluation.images
    arrays: dict[str, np.ndarray] = {}
    described = {}
    for name, (spec, model) in models.items():
        codes = encode_images(model, images, SCALINGS[spec["input"]], dev, batch_size)
        arrays[f"codes/{name}"] = codes
        described[name] = {
            "class": spec.get("class"),
            "input": spec["input"],
            "metrics_key": list(spec.get("metrics_key") or [name]),
            "code_shape": list(codes.shape[1:]),
        }
        print(f"{name:<24} codes {'x'.join(map(str, codes.shape[1:]))}")
    if evaluation.labels is not None:
        arrays["labels"] = evaluation.labels.numpy().astype(np.int64)
    if evaluation.names is not None:
        arrays["names"] = np.array(evaluation.names, dtype=str)
    arrays["held_out"] = evaluation.held_out.numpy().astype(bool)
    arrays["models"] = np.array(list(models), dtype=str)
    meta = {
        "aelab_version": __version__,
        "run_dir": str(Path(run_dir).resolve()),
        "data": evaluation.source,
        "n_images": len(images),
        "skipped": evaluation.info.get("skipped", 0),
        "models": described,
        "left_out": notes,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    try:
        _write_npz(out, arrays)
    except OSError as e:
        raise UserError(f"cannot write {out} ({e.strerror or e})") from None
    print(f"{len(images):,} images from {evaluation.source} -> {out}")
    for note in notes:
        print(f"aelab: left out {note}", file=sys.stderr)
    return out
