"""Every model of the dogs study, each named once (see :class:`aelab.studies.recipe.Recipe`).

Two architectures (``--arch``): ``jscc``, the default, a learned-transmission layout
(:class:`~aelab.models.jscc.JSCCAutoencoder`), and ``lab``, the lab's own layout
(:class:`~aelab.models.conv.ConvAutoencoder`), kept for reproducing it. The default architecture's models
are ``ae`` and ``noisy_var<v>``; when it is ``jscc``, the lab's layout is trained beside it under the
``lab_`` prefix at its own default budget, so the report shows both.

How the noisy models are made (budgets in training images; ``benchmarks/RESULTS.md`` has the sweep that
chose them):

- ``jscc``: the plain AE (72k images), then one SNR-adaptive model fine-tuned from it over 5..15 dB with the
  SNR as side information (36k), then one model per variance fine-tuned from that at a quarter of the
  learning rate (8k each). At equal compute the adaptive model beat three per-variance fine-tunes of the
  AE by 0.5-0.7 dB in that sweep, and the short per-variance fine-tunes specialise it to the lab's channels.
- ``lab``: the plain AE (72k), then one model per variance fine-tuned from it (12k each), as the lab did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aelab.losses import RECONSTRUCTION, channel_mse
from aelab.models.channel import AWGNChannel
from aelab.models.conv import ConvAutoencoder
from aelab.models.jscc import JSCCAutoencoder
from aelab.models.registry import build
from aelab.studies.recipe import Recipe

if TYPE_CHECKING:
    from aelab.studies.dogs.context import DogsRun

ARCHS = ("jscc", "lab")
ARCH_NAME = {"jscc": "JSCC layout", "lab": "lab layout"}  # how tables name them
AE_SAMPLES = 72_000
ADAPTIVE_SAMPLES = 36_000
NOISY_SAMPLES = {"jscc": 8_000, "lab": 12_000}  # per variance
ADAPTIVE_SNR = (5.0, 15.0)  # dB: the SNR-adaptive model's training range (the lab's SNRs are 8.2-13.0 dB)
LR = {"jscc": 1e-3, "lab": 2e-3}  # Adam's peak learning rate when --lr is not given
FINE_TUNE_LR = 0.25  # the per-variance fine-tunes of the adaptive model, relative to the architecture's rate
CLIP_GRAD = {"jscc": 1.0, "lab": 0.0}
EPOCH_BOUNDS = (2, 60)
LAB_PREFIX = "lab_"  # the lab layout's recipes when the default architecture is another


def var_key(variance: float) -> str:
    """``0.05`` -> ``"0.05"``: how a variance is written in metrics.json and checkpoint names."""
    return f"{variance:g}"


def lr_of(run: DogsRun, arch: str) -> float:
    return run.cfg.lr if run.cfg.lr is not None else LR[arch]


def _settings(arch: str, lr_scale: float = 1.0):
    def settings(run: DogsRun) -> dict[str, Any]:
        # the loop's free levers (--flip, --ema) are the user's to turn on for the default layout; the lab
        # layout keeps the lab's recipe, so its numbers still reproduce the lab
        levers = {"flip": run.cfg.flip, "ema": run.cfg.ema} if arch != "lab" else {"flip": False, "ema": 0.0}
        # with bf16 on a CPU, channels-last convolutions are faster still; in fp32 the loop's own choice stands
        return {
            "channels_last": True if run.device.type == "cpu" and run.bf16 else None,
            "lr": lr_of(run, arch) * lr_scale,
            "clip_grad": CLIP_GRAD[arch],
            **levers,
        }

    return settings


def _model(arch: str, latent_size: int | None, channel: dict | None):
    def make(run: DogsRun):
        kwargs = run.latent_kwargs if latent_size is None else {**run.latent_kwargs, "latent_size": latent_size}
        if channel is not None:
            kwargs["channel"] = build(AWGNChannel, **channel)
        return build(JSCCAutoencoder if arch == "jscc" else ConvAutoencoder, **kwargs)

    return make


def _arch_recipes(arch: str, variances: Sequence[float], prefix: str = "", size: int | None = None) -> list[Recipe]:
    """One architecture's models: ``<prefix>ae<tag>``, (jscc) ``<prefix>adaptive<tag>`` and
    ``<prefix>noisy<tag>_var<v>``, where ``tag`` is ``_latent16`` for the 16x16x16 latent."""
    tag, key = ("_latent16", ("latent16",)) if size == 16 else ("", ())
    key = (*key, *(("lab",) if prefix == LAB_PREFIX else ()))
    what = (", 16x16x16" if size == 16 else "") + (" (lab layout)" if prefix == LAB_PREFIX else "")
    ae = f"{prefix}ae{tag}"
    mse = lambda run: RECONSTRUCTION["mse"]  # noqa: E731  (looked up when built: tests may patch the loss)
    rows = [Recipe(ae, _model(arch, size, None), mse, AE_SAMPLES, EPOCH_BOUNDS, metrics_key=(*key, "ae"),
                   scaling="signed", settings=_settings(arch), label=f"plain AE{what}")]  # fmt: skip
    parent, lr_scale = ae, 1.0
    if arch == "jscc":
        parent, lr_scale = f"{prefix}adaptive{tag}", FINE_TUNE_LR
        rows.append(
            Recipe(parent, _model(arch, size, {"variance": 0.1, "snr_range": list(ADAPTIVE_SNR)}),
                   lambda run: channel_mse, ADAPTIVE_SAMPLES, EPOCH_BOUNDS, metrics_key=(*key, "adaptive"),
                   scaling="signed", init_from=ae, settings=_settings(arch),
                   label=f"SNR-adaptive {ADAPTIVE_SNR[0]:g}-{ADAPTIVE_SNR[1]:g} dB{what}")
        )  # fmt: skip
    for v in variances:
        rows.append(
            Recipe(f"{prefix}noisy{tag}_var{var_key(v)}", _model(arch, size, {"variance": v}), lambda run: channel_mse,
                   NOISY_SAMPLES[arch], EPOCH_BOUNDS, metrics_key=(*key, "noisy", var_key(v)), scaling="signed",
                   init_from=parent, settings=_settings(arch, lr_scale), label=f"noisy var {var_key(v)}{what}")
        )  # fmt: skip
    return rows


def recipes(variances: Sequence[float], arch: str = "jscc") -> dict[str, Recipe]:
    """The study's models for these noise variances: the default architecture's plain AE, adaptive model (jscc)
    and one noisy model per variance; the same at a 16x16x16 latent (part ``channel16``, ``_latent16`` names);
    and, when the default is not the lab's layout, the lab's models under ``lab_`` names (``lab.*`` metrics)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r} (one of {', '.join(ARCHS)})")
    rows = _arch_recipes(arch, variances) + _arch_recipes(arch, variances, size=16)
    if arch != "lab":
        rows += _arch_recipes("lab", variances, LAB_PREFIX)
    return {r.name: r for r in rows}
