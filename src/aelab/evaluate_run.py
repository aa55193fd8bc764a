"""``aelab evaluate RUN_DIR --data DIR``: a finished run's models, scored on someone else's images.

The run folder says how to rebuild each model (``checkpoints/models.json``, written while the study
trained them); the finished checkpoints give the weights. Every image of ``--data`` counts as test
data: an IDX folder (train and test files together) or a photo folder (decoded like the dogs study,
through the same cache). The scores land at the same places as in the run's ``metrics.json``
(``ae.test_psnr``, ``noisy.0.05.test_psnr``, ``explore.cnn.test_psnr``, ...), so the two files
compare key by key.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from aelab import evaluate
from aelab.checkpoint import atomic_write, load_checkpoint, load_model_state
from aelab.data.base import ImageData
from aelab.data.scaling import SCALINGS, TO_UNIT
from aelab.errors import UserError
from aelab.models.registry import MODELS_FILE, from_spec
from aelab.report import _clean
from aelab.runtime import resolve_device

PREPARE = SCALINGS


def load_run_models(
    run_dir: str | Path, device: torch.device, names: Sequence[str] | None = None
) -> tuple[dict[str, tuple[dict, nn.Module]], list[str]]:
    """Every finished model of a run (or those of ``names``): name -> (its description, the model in eval
    mode); plus notes on the ones left out (missing or unfinished checkpoints).

    ``aelab evaluate``, ``aelab export`` and :class:`aelab.results.Run` all load models here, so a model
    a notebook gets back is the one those commands score.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} does not exist")
    index = run_dir / "checkpoints" / MODELS_FILE
    if not index.is_file():
        raise UserError(f"{run_dir} is not an aelab run folder with reloadable models (no checkpoints/{MODELS_FILE})")
    try:
        specs = json.loads(index.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{index} is not readable JSON ({e})") from None
    if not isinstance(specs, dict):
        raise UserError(f"{index} does not describe any models")
    if names is not None:
        unknown = [n for n in names if n not in specs]
        if unknown:
            raise UserError(f"{run_dir} has no model {unknown[0]!r}; its models: {', '.join(specs) or 'none'}")
        specs = {n: specs[n] for n in names}
    models, notes = {}, []
    for name, spec in specs.items():
        path = run_dir / "checkpoints" / f"{name}.pt"
        if not path.is_file():
            notes.append(f"{name}: no checkpoint")
            continue
        state = load_checkpoint(path)
        epochs = int(state.get("config", {}).get("epochs", 0))
        if int(state.get("epoch", 0)) < epochs:
            notes.append(f"{name}: unfinished ({state.get('epoch', 0)} of {epochs} epochs)")
            continue
        if spec.get("input") not in PREPARE:
            notes.append(f"{name}: unknown input scaling {spec.get('input')!r}")
            continue
        model = from_spec({"class": spec["class"], "kwargs": spec["kwargs"]})
        load_model_state(model, state, path)
        models[name] = (spec, model.to(device).eval())
    if not models:
        raise UserError(f"{run_dir}: no finished model to evaluate ({'; '.join(notes) or 'none listed'})")
    return models, notes


@dataclass
class EvalImages:
    """Every image of a data folder in one order, with what the folder says about each.

    ``labels`` (int64, one per image) for IDX folders, ``names`` (the photos' paths relative to the
    folder) for photo folders; ``held_out`` marks the images the studies hold out (the IDX test files,
    the photos whose path hash puts them in the test split). The order is the one ``aelab evaluate``
    has always scored in: the training images, then the held-out ones.
    """

    images: torch.Tensor
    held_out: torch.Tensor
    labels: torch.Tensor | None
    names: list[str] | None
    source: str
    info: dict


def _photo_folder(folder: Path, size: int, limit: int | None) -> tuple[torch.Tensor, torch.Tensor, list[str], dict]:
    """A photo folder as :func:`aelab.data.photos.load_photos` loads it (same cache, images, split and
    ``info``), keeping the file names, which ``ImageData`` has no place for."""
    from aelab.data.photos import decode_folder, held_out_mask, photo_info

    test_fraction = 0.1  # load_photos' default, which the studies and `aelab evaluate` use
    photos = decode_folder(folder, size, limit)
    test = torch.from_numpy(held_out_mask(photos.names, test_fraction))
    chw = torch.from_numpy(photos.images).permute(0, 3, 1, 2).contiguous()
    order = torch.cat([(~test).nonzero().flatten(), test.nonzero().flatten()])
    info = photo_info(photos, size, test_fraction)
    return chw[order], test[order], [photos.names[i] for i in order.tolist()], info


def load_labelled_images(data: str | Path, shape: tuple[int, ...], limit: int | None = None) -> EvalImages:
    """All images of ``data`` (IDX or photo folder), shaped like the models' input ``(C, H, W)``,
    with their labels or file names; ``limit`` keeps the first that many (a stable subset for photos)."""
    from aelab.data.mnist import FILES, _find, read_idx_folder

    folder = Path(data).expanduser()
    if not folder.is_dir():
        raise UserError(f"data folder {folder} does not exist")
    labels: torch.Tensor | None = None
    names: list[str] | None = None
    if all(_find(folder, stem) for stem in FILES.values()):
        d = read_idx_folder(folder)
        kind = "IDX folder"
        images = torch.cat([d.train, d.test])
        held_out = torch.cat([torch.zeros(len(d.train), dtype=torch.bool), torch.ones(len(d.test), dtype=torch.bool)])
        labels = torch.cat([d.train_labels, d.test_labels]) if d.train_labels is not None else None
        info = dict(d.info)
    else:
        kind = "photo folder"
        images, held_out, names, info = _photo_folder(folder, shape[-1], limit)
    if limit is not None:
        images, held_out = images[:limit], held_out[:limit]
        labels = None if labels is None else labels[:limit]
        names = None if names is None else names[:limit]
    if tuple(images.shape[1:]) != tuple(shape):
        c, h, w = images.shape[1:]
        raise UserError(
            f"the run's models take {shape[0]}x{shape[1]}x{shape[2]} images; {folder} ({kind}) holds {c}x{h}x{w}"
        )
    return EvalImages(images, held_out, labels, names, f"{folder} ({kind})", info)


def load_eval_images(data: str | Path, shape: tuple[int, ...], limit: int | None = None) -> ImageData:
    """All images of ``data`` as one test set, shaped like the models' input ``(C, H, W)``."""
    e = load_labelled_images(data, shape, limit)
    return ImageData(e.images, e.images[:0], source=e.source, info=e.info)


def score_model(
    spec: dict, model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 64, seed: int = 0
) -> dict[str, float]:
    """A run's model scored by :func:`aelab.evaluate.score_model`, the scorer the run itself used, with the
    input scaling its description names: PSNR/SSIM/MSE on [0, 1]; BCE for sigmoid-output models; noisy
    models at their variance (noise drawn from ``seed`` as in the run) and on a noise-free channel."""
    return evaluate.score_model(model, images, PREPARE[spec["input"]], TO_UNIT[spec["input"]], device, batch_size, seed)


def _place(tree: dict, path: list[str], value: dict) -> None:
    node = tree
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node.setdefault(path[-1], {}).update(value)


def _fmt(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.2f}"


def evaluate_run(
    run_dir: str | Path,
    data: str | Path,
    json_path: str | Path | None = None,
    device: str = "auto",
    batch_size: int = 64,
    seed: int = 0,
    limit: int | None = None,
) -> Path:
    """Score every finished model of ``run_dir`` on all images of ``data``; print a table, write JSON."""
    dev = resolve_device(device)
    models, notes = load_run_models(run_dir, dev)
    shape = next(iter(models.values()))[1].image_shape
    evaluation = load_eval_images(data, shape, limit)
    images = evaluation.train
    result: dict = {
        "data": {"source": evaluation.source, "n_test": len(images), "skipped": evaluation.info.get("skipped", 0)},
        "evaluation": {"run_dir": str(run_dir), "models": list(models), "left_out": notes},
    }
    rows = []
    for name, (spec, model) in models.items():
        scores = score_model(spec, model, images, dev, batch_size, seed)
        _place(result, list(spec.get("metrics_key") or [name]), scores)
        rows.append((name, scores))

    print(f"{len(images):,} images from {evaluation.source}")
    print(f"{'model':<24} {'PSNR (dB)':>10} {'SSIM':>7} {'MSE':>9} {'PSNR clean':>11} {'noise var':>10}")
    for name, sc in rows:
        print(
            f"{name:<24} {_fmt(sc['test_psnr']):>10} {sc['test_ssim']:>7.3f} {sc['test_mse']:>9.5f} "
            f"{_fmt(sc.get('test_psnr_clean')):>11} {sc.get('variance', 0.0):>10g}"
        )
    for note in notes:
        print(f"aelab: left out {note}", file=sys.stderr)
    out = Path(json_path) if json_path is not None else Path(run_dir) / f"evaluate_{Path(data).name or 'data'}.json"
    atomic_write(out, json.dumps(_clean(result), indent=2) + "\n")
    return out
