"""The MNIST study: the lab's experiment one, part by part, each a section of report.md.

ae       MLP autoencoder, 2-D bottleneck, BCE
dae      denoising autoencoders (input + 0.4 N(0,1)) with bottleneck 2 and 32
manifold decode a uniform grid of the 2-D latent plane
l2       the AE again with weight decay and with an explicit L2 penalty, side by side
explore  bottleneck 128, MSE loss, sigmoid everywhere, CNN autoencoder
compare  (opt-in) digit judge, latent quality of every 2-D model, generation by sampler

The models are in ``recipes.py``, the shared values in ``context.py`` (``MnistRun``), the parts in
``registry.py``, and ``study.py`` runs them.
"""

from aelab.studies.mnist.config import MnistConfig
from aelab.studies.mnist.context import MnistRun
from aelab.studies.mnist.registry import REGISTRY
from aelab.studies.mnist.study import run_mnist

PARTS = REGISTRY.names
DEFAULT_PARTS = REGISTRY.defaults

__all__ = ["DEFAULT_PARTS", "PARTS", "REGISTRY", "MnistConfig", "MnistRun", "run_mnist"]
