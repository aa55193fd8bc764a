"""``explorer.html`` for an MNIST run: every 2-D model the run trained, as a plane to move through.

A writer beside the report: it reads the run's models and scores (training nothing new) and hands
plain arrays to :mod:`aelab.explorer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from aelab.evaluate import decode
from aelab.explorer import LatentModel, mnist_page, write_page
from aelab.runtime import get_dist

if TYPE_CHECKING:
    from aelab.studies.mnist.context import MnistRun


SHOWN = ("ae2d", "ae2d_weight_decay", "ae2d_l2_penalty", "dae_b2", "vae2d", "rae2d_l2", "umap_ae")  # 2-D planes


def latent_models(run: MnistRun) -> list[LatentModel]:
    """The lab AE, its L2 variants, the DAE and compare's 2-D models, those this run trained."""
    out = []
    for name in SHOWN:
        if not run.has_model(name):
            continue
        sc = run.scores(name)
        if sc.codes.shape[1] != 2:
            continue
        model = run.model(name)

        def decode2d(z: np.ndarray, model=model) -> np.ndarray:
            return decode(model, z, run.device)[:, 0].numpy()

        out.append(LatentModel(run.label(name), sc.codes, sc.x_hat[:, 0].numpy(), decode2d))
    return out


def write_explorer(run: MnistRun) -> None:
    models = latent_models(run)
    if not models or not get_dist().is_main:
        return
    images = run.data.test[:, 0].numpy() / 255.0
    title = f"aelab latent explorer: {run.identity.name}"
    page = mnist_page(models, images, run.labels, list(run.identity.class_names), title)
    write_page(run.session.run.path / "explorer.html", page)
    run.report.text(
        f"[Open the latent explorer](explorer.html): the test codes of {len(models)} 2-D model(s) as planes to move "
        "through, with the decoder's image under the pointer (`aelab explore RUN_DIR` opens it)."
    )
