"""aelab: the deep-autoencoder lab, end to end.

Public API::

    from aelab import MLPAutoencoder, ConvAutoencoder, AWGNChannel, TrainConfig, fit, psnr, ssim
    from aelab import load_mnist, load_photos, run_mnist, run_dogs
"""

from aelab.errors import TrainingInterrupted, UserError

__version__ = "0.1.0"

from aelab.data.base import ImageData  # noqa: E402
from aelab.data.idx import read_idx, write_idx  # noqa: E402
from aelab.data.mnist import load_mnist  # noqa: E402
from aelab.evaluate import knn_accuracy, mean_psnr, psnr, ssim, trustworthiness  # noqa: E402
from aelab.latent import GaussianFit, fit_gaussian, latent_grid  # noqa: E402
from aelab.models.channel import AWGNChannel, power_normalize  # noqa: E402
from aelab.models.conv import ConvAutoencoder, MnistConvAutoencoder  # noqa: E402
from aelab.models.mlp import MLPAutoencoder  # noqa: E402
from aelab.studies.mnist import MnistConfig, run_mnist  # noqa: E402
from aelab.train import TrainConfig, fit  # noqa: E402

__all__ = [
    "AWGNChannel",
    "ConvAutoencoder",
    "GaussianFit",
    "ImageData",
    "MLPAutoencoder",
    "MnistConfig",
    "MnistConvAutoencoder",
    "TrainConfig",
    "TrainingInterrupted",
    "UserError",
    "__version__",
    "fit",
    "fit_gaussian",
    "knn_accuracy",
    "latent_grid",
    "load_mnist",
    "mean_psnr",
    "power_normalize",
    "psnr",
    "read_idx",
    "run_mnist",
    "ssim",
    "trustworthiness",
    "write_idx",
]
