"""Every model of the dogs study, each named once (see :class:`aelab.studies.recipe.Recipe`).

The plain AE trains from scratch; each noisy model starts from the AE's weights and is fine-tuned with
its channel, which reaches a better PSNR in far fewer steps than training it from scratch. Budgets
are in samples, so a folder of any size gets about the same compute (README: timings).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aelab.losses import RECONSTRUCTION, channel_mse
from aelab.models.channel import AWGNChannel
from aelab.models.conv import ConvAutoencoder
from aelab.models.registry import build
from aelab.studies.recipe import Recipe

if TYPE_CHECKING:
    from aelab.studies.dogs.context import DogsRun

AE_SAMPLES = 72_000
NOISY_SAMPLES = 12_000
EPOCH_BOUNDS = (2, 60)


def var_key(variance: float) -> str:
    """``0.05`` -> ``"0.05"``: how a variance is written in metrics.json and checkpoint names."""
    return f"{variance:g}"


def _settings(run: DogsRun) -> dict:
    # with bf16 on a CPU, channels-last convolutions are faster still; in fp32 the loop's own choice stands
    return {"channels_last": True if run.device.type == "cpu" and run.bf16 else None}


def _conv(run: DogsRun, latent_size: int | None, variance: float | None) -> ConvAutoencoder:
    arch = run.arch if latent_size is None else {**run.arch, "latent_size": latent_size}
    channel = {} if variance is None else {"channel": build(AWGNChannel, variance=variance)}
    return build(ConvAutoencoder, **arch, **channel)


def recipes(variances: Sequence[float]) -> dict[str, Recipe]:
    """The study's models for these noise variances: the plain AE and one noisy model per variance,
    at the run's latent and (part ``channel16``) at a 16x16x16 latent."""
    rows = []
    for prefix, key, size in (("", (), None), ("_latent16", ("latent16",), 16)):
        ae = f"ae{prefix}"
        rows.append(
            Recipe(ae, lambda run, size=size: _conv(run, size, None), lambda run: RECONSTRUCTION["mse"], AE_SAMPLES,
                   EPOCH_BOUNDS, metrics_key=(*key, "ae"), scaling="signed", settings=_settings, label="plain AE")
        )  # fmt: skip
        for v in variances:
            rows.append(
                Recipe(f"noisy{prefix}_var{var_key(v)}", lambda run, size=size, v=v: _conv(run, size, v),
                       lambda run: channel_mse, NOISY_SAMPLES, EPOCH_BOUNDS, metrics_key=(*key, "noisy", var_key(v)),
                       scaling="signed", init_from=ae, settings=_settings, label=f"noisy var {var_key(v)}")
            )  # fmt: skip
    return {r.name: r for r in rows}
