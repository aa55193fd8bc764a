"""aelab: the deep-autoencoder lab, end to end.

Public API::

    from aelab import MLPAutoencoder, ConvAutoencoder, AWGNChannel, TrainConfig, fit, psnr, ssim
    from aelab import load_mnist, load_photos, run_mnist, run_dogs
"""

import os as _os

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. On a CPU shared with other
# work, spinning threads stall every parallel op; on the 2-core test machine under load the MNIST MLP
# trained 20x and the dog conv AE 3x faster with it (benchmarks/RESULTS.md). Set it yourself to override.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from aelab.errors import TrainingInterrupted, UserError  # noqa: E402

__version__ = "0.1.0"

from aelab.data.base import ImageData  # noqa: E402
from aelab.data.idx import read_idx, write_idx  # noqa: E402
from aelab.data.mnist import load_mnist  # noqa: E402
from aelab.data.photos import load_photos  # noqa: E402
from aelab.evaluate import judged_samples, knn_accuracy, mean_psnr, psnr, ssim, trustworthiness  # noqa: E402
from aelab.latent import GaussianFit, fit_gaussian, latent_grid  # noqa: E402
from aelab.models.channel import AWGNChannel, power_normalize  # noqa: E402
from aelab.models.conv import ConvAutoencoder, MnistConvAutoencoder  # noqa: E402
from aelab.models.judge import DigitJudge  # noqa: E402
from aelab.models.mlp import MLPAutoencoder  # noqa: E402
from aelab.models.vae import VAE  # noqa: E402
from aelab.studies.dogs import DogsConfig, run_dogs  # noqa: E402
from aelab.studies.mnist import MnistConfig, run_mnist  # noqa: E402
from aelab.train import TrainConfig, fit  # noqa: E402

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
    "TrainConfig",
    "TrainingInterrupted",
    "UserError",
    "VAE",
    "__version__",
    "fit",
    "fit_gaussian",
    "judged_samples",
    "knn_accuracy",
    "latent_grid",
    "load_mnist",
    "load_photos",
    "mean_psnr",
    "power_normalize",
    "psnr",
    "read_idx",
    "run_dogs",
    "run_mnist",
    "ssim",
    "trustworthiness",
    "write_idx",
]
