"""aelab: the deep-autoencoder lab, end to end.

The studies, as the command line runs them (keywords are the flags' names; each returns a finished Run)::

    import aelab
    run = aelab.mnist(parts=["ae", "dae"], quick=True)   # aelab mnist --parts ae,dae --quick
    run.metrics["ae2d"]["test_psnr"], run.model("ae2d"), run.figures["manifold"]
    run = aelab.open_run("runs/dogs")                    # any finished run folder

The pieces::

    from aelab import MLPAutoencoder, ConvAutoencoder, AWGNChannel, TrainConfig, fit, psnr, ssim
    from aelab import load_mnist, load_photos, run_mnist, run_dogs
"""

import os as _os

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. On a CPU shared with other
# work, spinning threads stall every parallel op (benchmarks/RESULTS.md measures how much). Set it
# yourself to override.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from aelab.errors import TrainingInterrupted, UserError  # noqa: E402

__version__ = "0.1.0"

# Public names resolve on first use, so `import aelab` (and `aelab --help`) loads no study, no
# matplotlib and no scikit-learn until something asks for them.
_PUBLIC = {
    "dogs": "aelab.api",
    "mnist": "aelab.api",
    "Run": "aelab.results",
    "open_run": "aelab.results",
    "ImageData": "aelab.data.base",
    "read_idx": "aelab.data.idx",
    "write_idx": "aelab.data.idx",
    "load_mnist": "aelab.data.mnist",
    "load_photos": "aelab.data.photos",
    "judged_samples": "aelab.evaluate",
    "knn_accuracy": "aelab.evaluate",
    "mean_psnr": "aelab.evaluate",
    "psnr": "aelab.evaluate",
    "ssim": "aelab.evaluate",
    "trustworthiness": "aelab.evaluate",
    "GaussianFit": "aelab.latent",
    "fit_gaussian": "aelab.latent",
    "latent_grid": "aelab.latent",
    "AWGNChannel": "aelab.models.channel",
    "power_normalize": "aelab.models.channel",
    "ConvAutoencoder": "aelab.models.conv",
    "MnistConvAutoencoder": "aelab.models.conv",
    "DigitJudge": "aelab.models.judge",
    "MLPAutoencoder": "aelab.models.mlp",
    "VAE": "aelab.models.vae",
    "DogsConfig": "aelab.studies.dogs",
    "run_dogs": "aelab.studies.dogs",
    "MnistConfig": "aelab.studies.mnist",
    "run_mnist": "aelab.studies.mnist",
    "TrainConfig": "aelab.train",
    "fit": "aelab.train",
}


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'aelab' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


__all__ = [
    "AWGNChannel",
    "ConvAutoencoder",
    "DigitJudge",
    "DogsConfig",
    "GaussianFit",
    "ImageData",
    "MLPAutoencoder",
    "MnistConfig",
    "MnistConvAutoencoder",
    "Run",
    "TrainConfig",
    "TrainingInterrupted",
    "UserError",
    "VAE",
    "__version__",
    "dogs",
    "fit",
    "fit_gaussian",
    "judged_samples",
    "knn_accuracy",
    "latent_grid",
    "load_mnist",
    "load_photos",
    "mean_psnr",
    "mnist",
    "open_run",
    "power_normalize",
    "psnr",
    "read_idx",
    "run_dogs",
    "run_mnist",
    "ssim",
    "trustworthiness",
    "write_idx",
]
