"""The dogs study: the lab's experiment two, part by part, each a section of report.md.

ae        the plain conv autoencoder (16x8x8 code), MSE on images in [-1, 1]: the JSCC layout by default,
          the lab's layout beside it
samples   nine random test photos: originals, reconstructions, and their latent channel maps
gauss     a Gaussian fitted to 256 training codes (Ledoit-Wolf), nine samples decoded, and the lab's blend
          (0.25 sample + 0.75 real code); each sample's PSNR to its nearest training photo
perturb   the nine test codes plus Gaussian noise at several scales of the codes' per-dimension std
noisy     one autoencoder per noise variance with a power-normalised, noisy latent; PSNR with and
          without noise, PSNR vs SNR, and how near its Gaussian samples land to the training photos
generation a classifier two-sample test: decoded Gaussian samples of the plain AE and each noisy model
          against the held-out photos, and against the same model's reconstructions of them
channel   PSNR vs channel SNR for the AE and the noisy models against JPEG, WebP, AVIF, JPEG 2000 (and
          HEIF with pillow-heif) at the channel's capacity, and against the best of them at each SNR
channel16 (opt-in) the same at a 16x16x16 latent

Every number is on the held-out photos (10% of the folder, chosen by path hash), except the
nearest-training-photo PSNRs, which compare generated images with the training photos by design.
The models are in ``recipes.py``, the shared values in ``context.py`` (``DogsRun``), the parts in
``registry.py``, and ``study.py`` runs them.
"""

from aelab.studies.dogs.config import PERTURB_SCALES, VARIANCES, DogsConfig
from aelab.studies.dogs.context import DogsRun
from aelab.studies.dogs.recipes import var_key
from aelab.studies.dogs.registry import REGISTRY
from aelab.studies.dogs.study import find_data, run_dogs

PARTS = REGISTRY.names
DEFAULT_PARTS = REGISTRY.defaults

__all__ = [
    "DEFAULT_PARTS", "PARTS", "PERTURB_SCALES", "REGISTRY", "VARIANCES", "DogsConfig", "DogsRun", "find_data",
    "run_dogs", "var_key",
]  # fmt: skip
