"""The in-memory form every study trains on: uint8 image tensors, decoded once."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

RUN_STATE = ("cache",)  # ImageData.info keys that describe this run, not the data


@dataclass
class ImageData:
    """A train/test split of uint8 images shaped (N, C, H, W), with optional integer labels.

    ``source`` says where the images came from (shown in the report); ``info`` carries anything
    else the report should state (skipped files, cache hits).
    """

    train: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    source: str = ""
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("train", "test"):
            t = getattr(self, name)
            if t.dtype != torch.uint8 or t.ndim != 4:
                raise ValueError(f"{name} images must be uint8 (N, C, H, W), got {t.dtype} {tuple(t.shape)}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.shape[1:])  # type: ignore[return-value]

    def summary(self) -> dict:
        """What metrics.json records about the data. Facts about this process rather than the data
        (a decode-cache hit or miss) stay in ``info`` for the report but out of here, so that the same
        seed, data and device give a byte-identical metrics.json."""
        info = {k: v for k, v in self.info.items() if k not in RUN_STATE}
        return {"source": self.source, "n_train": len(self.train), "n_test": len(self.test), **info}
