"""The manifold figure the ``manifold`` and ``l2`` parts share: codes above, decoded grids below."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from aelab import plots


def manifold_figure(
    panels: Mapping[str, tuple[np.ndarray, torch.Tensor]], labels: np.ndarray, n: int, extent: tuple[float, float]
):
    """``panels``: title -> (test codes, images decoded from the n x n grid over ``extent``)."""
    fig, axes = plots.panels(2 * len(panels), 4.2, ncols=len(panels))
    for i, (name, (codes, decoded)) in enumerate(panels.items()):
        plots.scatter_codes(axes[i], codes, labels, f"{name}: test codes", extent)
        plots.show_tiled(axes[len(panels) + i], decoded, n, f"{name}: decoded grid", extent)
    fig.tight_layout()
    return fig
