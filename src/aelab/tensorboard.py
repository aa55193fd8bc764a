"""``--tensorboard DIR``: every model's training as TensorBoard runs, for people who already use it.

Each model gets its own run folder ``DIR/<model name>`` with the same tags (``loss/train``,
``loss/test``, ``lr``, ``reconstructions``), so TensorBoard overlays the models' curves in one chart
and its run selector picks models. The codes of held-out images go to the embedding projector with
their labels as metadata and the images as a sprite, so the latent space can be browsed there too.

:class:`TensorBoardLog` is fed by the training loop's epoch hooks (``aelab.train.fit(...,
on_epoch=[log.on_epoch])``) and writes on rank 0 only; the other ranks keep it as a no-op, so a
study never branches on the rank.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aelab.errors import UserError
from aelab.runtime import get_dist

MISSING = "--tensorboard needs the tensorboard package: pip install 'aelab[tensorboard]'"
SPRITE_MAX_PX = 8192  # the projector refuses sprites larger than this on a side
GRID_PAD = 2  # pixels between the images of the reconstruction grid


def _summary_writer() -> type:
    """The SummaryWriter class, or the one-line install hint: tensorboard is an optional extra."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError(MISSING) from None
    return SummaryWriter


def _accepts_noise(model: nn.Module) -> bool:
    """Models with a noisy channel take ``noise=``; the logged pictures are always the clean decode."""
    try:
        return "noise" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def image_grid(originals: torch.Tensor, reconstructions: torch.Tensor, pad: int = GRID_PAD) -> torch.Tensor:
    """Two rows, originals above their reconstructions, as one (C, H', W') float image in [0, 1].

    A grey frame separates the images so black MNIST borders do not merge into one dark band.
    """
    n, c, h, w = originals.shape
    grid = torch.full((c, 2 * h + 3 * pad, n * w + (n + 1) * pad), 0.5)
    for row, batch in enumerate((originals, reconstructions)):
        top = pad + row * (h + pad)
        for i in range(n):
            left = pad + i * (w + pad)
            grid[:, top : top + h, left : left + w] = batch[i].float().clamp(0.0, 1.0)
    return grid


class TensorBoardLog:
    """Losses, learning rate and reconstructions per epoch, plus projector embeddings, for every model.

    ``images``: a few held-out uint8 images (N, C, H, W) reconstructed after every epoch;
    ``to_input``: uint8 -> the model's input (``aelab.data.scaling.unit`` or ``signed``);
    ``to_unit``: the model's ``x_hat`` back on [0, 1] (``aelab.data.scaling.TO_UNIT[...]``), so the
    pictures look the same whichever scaling a model was trained on. ``device``: where the images go
    for the forward pass (default: wherever the model's parameters are).
    """

    def __init__(
        self,
        logdir: str | Path,
        images: torch.Tensor | None = None,
        to_input: Callable[[torch.Tensor], torch.Tensor] | None = None,
        to_unit: Callable[[torch.Tensor], torch.Tensor] | None = None,
        device: torch.device | None = None,
    ) -> None:
        self._writer_class = _summary_writer()  # on every rank: a missing package is the same error everywhere
        if images is not None and (images.dtype != torch.uint8 or images.ndim != 4):
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if images is not None and to_input is None:
            raise ValueError("images need to_input, the model's input scaling")
        self.logdir = Path(logdir).expanduser()
        self.images = None if images is None else images.detach().cpu()
        self.to_input = to_input
        self.to_unit = to_unit or (lambda x: x.clamp(0.0, 1.0))
        self.device = device
        self.enabled = get_dist().is_main
        self._writers: dict[str, Any] = {}
        if self.enabled:  # a bad folder is a one-line error now, not a traceback after the first epoch
            try:
                self.logdir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise UserError(f"--tensorboard {self.logdir}: cannot make the folder ({e.strerror or e})") from None

    def writer(self, name: str) -> Any:
        """The SummaryWriter of model ``name`` (its own run folder), made on first use."""
        if name not in self._writers:
            self._writers[name] = self._writer_class(log_dir=str(self.logdir / name))
        return self._writers[name]

    def on_epoch(self, name: str, model: nn.Module, record: dict) -> None:
        """The training loop's epoch hook: scalars at step = epoch, then the reconstruction grid."""
        if not self.enabled:
            return
        w = self.writer(name)
        step = int(record["epoch"])
        w.add_scalar("loss/train", float(record["train_loss"]), step)
        w.add_scalar("loss/test", float(record["test_loss"]), step)
        if record.get("lr") is not None:
            w.add_scalar("lr", float(record["lr"]), step)
        if self.images is not None and len(self.images) and hasattr(model, "decode"):  # autoencoders, not the judge
            w.add_image("reconstructions", self.reconstructions(model), step, dataformats="CHW")
        w.flush()  # so a TensorBoard already watching the folder shows the epoch now

    @torch.no_grad()
    def reconstructions(self, model: nn.Module) -> torch.Tensor:
        """The grid of the logged images and the model's clean (noise-free) reconstructions of them."""
        assert self.images is not None and self.to_input is not None
        device = self.device or next(model.parameters()).device
        was_training = model.training
        model.eval()
        x = self.to_input(self.images.to(device))
        out = model(x, noise=False) if _accepts_noise(model) else model(x)
        model.train(was_training)
        x_hat = self.to_unit(out["x_hat"].float()).cpu()
        return image_grid(self.images.float() / 255.0, x_hat)

    def embedding(
        self,
        name: str,
        codes: np.ndarray | torch.Tensor,
        labels: Sequence[Any] | np.ndarray | torch.Tensor | None,
        images: torch.Tensor | None,
        tag: str = "codes",
        limit: int = 10_000,
    ) -> int:
        """Model ``name``'s codes in the embedding projector, one point per image.

        ``labels`` become the projector's metadata (colour and search by digit); ``images`` (uint8
        (N, C, H, W)) its sprite, so hovering a point shows the digit. Codes are flattened to vectors.
        Only the first ``limit`` points are written, and fewer where the sprite would exceed the
        projector's 8192-pixel limit. Returns the number of points written.
        """
        if not self.enabled:
            return 0
        mat = torch.as_tensor(np.asarray(codes, dtype=np.float32)).flatten(1)
        n = min(len(mat), limit)
        if images is not None:
            if len(images) != len(mat):
                raise ValueError(f"{len(mat)} codes but {len(images)} images")
            side = max(images.shape[-2:])
            n = min(n, (SPRITE_MAX_PX // side) ** 2)
        if labels is not None and len(labels) != len(mat):
            raise ValueError(f"{len(mat)} codes but {len(labels)} labels")
        metadata = None if labels is None else [str(v) for v in np.asarray(labels)[:n].tolist()]
        sprite = None if images is None else images[:n].float() / 255.0
        self.writer(name).add_embedding(mat[:n], metadata=metadata, label_img=sprite, global_step=0, tag=tag)
        self.writer(name).flush()
        return n

    def close(self) -> None:
        for w in self._writers.values():
            w.close()
        self._writers.clear()

    def __enter__(self) -> TensorBoardLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
