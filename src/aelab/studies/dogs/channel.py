"""Parts ``channel`` and ``channel16`` (opt-in): the noisy-latent autoencoder as a transmission system.

channel    the plain AE and every noisy-latent model evaluated at test SNRs 0..25 dB, against a digital
           pipeline (JPEG / WebP at the channel's capacity, see aelab.digital) given the same number of
           channel uses as the latent has reals
channel16  the same at a 16x16x16 latent (k/n four times larger): a plain AE and the noisy models trained
           through the same recipes under their own checkpoint names

Both use the study's models by recipe name, so asking for ``ae,noisy,channel`` trains nothing twice.
Every number is on the held-out photos.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from aelab import plots
from aelab.digital import CODECS, COUNTS, QUALITIES, digital_psnr
from aelab.models.channel import AWGNChannel, snr_db, variance_at
from aelab.models.registry import build, from_spec, spec_of
from aelab.studies.dogs.config import VARIANCES
from aelab.studies.dogs.recipes import var_key
from aelab.studies.parts import Part

if TYPE_CHECKING:
    from aelab.studies.dogs.context import DogsRun

SNRS = tuple(range(0, 26))  # test SNRs (dB)
QUICK_QUALITIES = tuple(range(0, 101, 10))
CODEC_NAMES = {"jpeg": "JPEG", "webp": "WebP"}
JSCC_REFERENCE = (
    "For reference, Deep JSCC (Bourtsoulatze et al. 2019) reports about 30.8 dB at 13 dB SNR on CIFAR-10 "
    "(32x32 photos) with k/n = 1/6, and a cliff for JPEG/JPEG2000 at low SNR; its images, resolution and "
    "bandwidth ratio differ from these, so only the shape of the curves is comparable."
)


def db_key(snr: float) -> str:
    """``13.0103`` -> ``"13.01"``: how an SNR is written in metrics.json."""
    return f"{round(snr, 2):g}"


def with_channel(model: nn.Module) -> nn.Module:
    """The plain AE behind a normalise-only channel: same class and weights, codes scaled to unit power per
    sample, so noise of a given variance means the same SNR for it as for the noisy models."""
    spec = spec_of(model)
    if spec is None:
        raise ValueError(f"{type(model).__name__} was not made with aelab.models.registry.build")
    wrapped = from_spec({**spec, "kwargs": {**spec["kwargs"], "channel": spec_of(build(AWGNChannel, variance=0.0))}})
    wrapped.load_state_dict(model.state_dict())
    return wrapped.to(next(model.parameters()).device).eval()


@dataclass
class ChannelResult:
    """PSNR vs SNR of the autoencoders and of the digital pipeline at one latent size."""

    shape: tuple[int, int, int]
    digital_key: str  # "digital" or "digital_latent16"
    curves: dict[str, list[float]]  # model -> PSNR at each of SNRS
    at_lab: dict[str, list[float]]  # model -> PSNR at each lab variance
    trained: dict[str, float]  # noisy model -> training SNR
    digital: dict = field(default_factory=dict)  # codec -> count -> digital_psnr's entry
    skipped: str = ""  # why the part has nothing to show


def _measure(run: DogsRun, prefix: str, latent_size: int, digital_key: str) -> ChannelResult:
    """Every model of one latent size through the channel, and the digital pipeline with the same channel uses."""
    models = {f"ae{prefix}": with_channel(run.model(f"ae{prefix}"))}
    trained = {}
    if f"adaptive{prefix}" in run.recipes:  # the SNR-adaptive model: no one training SNR to mark
        models[f"adaptive{prefix}"] = run.model(f"adaptive{prefix}")
    for v in run.cfg.variances:
        name = f"noisy{prefix}_var{var_key(v)}"
        models[name], trained[name] = run.model(name), snr_db(v)
    shape = (run.cfg.latent_channels, latent_size, latent_size)
    res = ChannelResult(shape, digital_key, {}, {}, trained)
    for name, model in models.items():
        res.curves[name] = [run.psnr_at(model, variance_at(snr)) for snr in SNRS]
        res.at_lab[name] = [run.psnr_at(model, v) for v in VARIANCES]
    qualities = QUICK_QUALITIES if run.cfg.quick else QUALITIES
    lab_snrs = [snr_db(v) for v in VARIANCES]
    res.digital = digital_psnr(run.data.test, [*SNRS, *lab_snrs], math.prod(shape), CODECS, qualities)
    return res


def compute_channel(run: DogsRun) -> ChannelResult:
    return _measure(run, "", run.cfg.latent_size, "digital")


def compute_channel16(run: DogsRun) -> ChannelResult:
    if run.cfg.latent_size == 16:
        return ChannelResult((16, 16, 16), "digital_latent16", {}, {}, {}, skipped="own latent")
    return _measure(run, "_latent16", 16, "digital_latent16")


def write(run: DogsRun, res: ChannelResult) -> None:
    """Curves, digital baseline, figures, tables and the verdict for one latent size."""
    r = run.report
    if res.skipped:
        run.section("Latent 16x16x16")
        r.text(
            f"This run's own latent is already 16x16x16: part `channel` (section {run.registry.number('channel')}) is this comparison."
        )
        return
    n_reals = math.prod(res.shape)
    pixels = 3 * run.data.shape[1] * run.data.shape[2]
    tag = "x".join(str(d) for d in res.shape)
    suffix = "" if res.digital_key == "digital" else "_latent16"
    run.section(f"PSNR vs channel SNR against a digital pipeline, latent {tag}")
    r.text(
        f"Each autoencoder sends its {n_reals:,} latent reals (k/n = {n_reals:,}/{pixels:,} = 1/{pixels / n_reals:g} "
        f"channel uses per pixel value) through the power-normalised channel with noise variance "
        f"10^(-SNR/10), for SNR 0..{SNRS[-1]} dB in 1 dB steps (one fixed noise draw per photo). The plain "
        "AE, trained without noise, gets the same per-sample power normalisation at test time. The digital "
        f"pipeline gets the same {n_reals:,} channel uses at capacity: a budget of {n_reals:,} x 0.5 log2(1 + SNR) "
        "bits per photo, delivered without error; each photo is sent as JPEG (optimised Huffman tables) or "
        "WebP at the highest quality whose size fits, counting either the whole file or only the "
        "entropy-coded payload (headers and tables known to the receiver: the digital best case). When "
        "nothing fits, the receiver shows the photo's mean colour."
        + (" Quick run: qualities searched in steps of 10 only." if run.cfg.quick else "")
    )
    for name in res.curves:
        r.metrics.setdefault("channel", {})[name] = {
            "psnr_at_snr": {db_key(snr): p for snr, p in zip(SNRS, res.curves[name])},
            "psnr_at_variance": {var_key(v): p for v, p in zip(VARIANCES, res.at_lab[name])},
            "trained_snr_db": res.trained.get(name),
        }
    dig_curves, dig_lab, fallback = _digital_metrics(run, res, n_reals)
    marks = dict(res.trained)
    r.figure(
        plots.curves(SNRS, res.curves, "channel SNR at test (dB)", "test PSNR (dB)", marks=marks),
        f"channel_psnr_vs_snr{suffix}",
        f"Latent {tag}: each autoencoder evaluated at every test SNR; the dot marks a noisy model's "
        "training SNR. The plain AE was trained without noise.",
    )
    styles = {label: ("--" if "file" in label else ":") for label in dig_curves}
    r.figure(
        plots.curves(
            SNRS, {**res.curves, **dig_curves}, "channel SNR (dB)", "test PSNR (dB)", marks=marks, styles=styles
        ),
        f"channel_vs_digital{suffix}",
        f"Latent {tag}: the autoencoders (solid) against JPEG and WebP at channel capacity, whole file "
        "(dashed) and payload only (dotted).",
    )
    lab_snrs = [snr_db(v) for v in VARIANCES]
    header = ["system", *[f"var {var_key(v)} ({snr:.2f} dB)" for v, snr in zip(VARIANCES, lab_snrs)]]
    r.table(header, [[name, *vals] for name, vals in {**res.at_lab, **dig_lab}.items()], digits=2)
    shown = [snr for snr in (0, 5, 10, 13, 15, 20, 25) if snr in SNRS]
    r.table(
        ["system", *[f"{snr} dB" for snr in shown]],
        [[name, *[vals[SNRS.index(snr)] for snr in shown]] for name, vals in {**res.curves, **dig_curves}.items()],
        digits=2,
    )
    r.text(_verdict(res.curves, dig_curves, fallback, res.trained))
    r.text(JSCC_REFERENCE)


def _digital_metrics(run: DogsRun, res: ChannelResult, n_reals: int) -> tuple[dict, dict, dict]:
    """The digital pipeline's curves by label, recorded in metrics.json under ``res.digital_key``."""
    dig_curves: dict[str, list[float]] = {}
    dig_lab: dict[str, list[float]] = {}
    fallback: dict[str, list[float]] = {}
    tree = run.report.metrics.setdefault(res.digital_key, {})
    for codec in CODECS:
        for count in COUNTS:
            d = res.digital[codec][count]
            label = f"{CODEC_NAMES[codec]} ({count})"
            dig_curves[label] = d["psnr"][: len(SNRS)]
            dig_lab[label] = d["psnr"][len(SNRS) :]
            fallback[label] = d["fallback_share"][: len(SNRS)]
            tree.setdefault(codec, {})[count] = {
                "psnr_at_snr": {db_key(snr): p for snr, p in zip(SNRS, dig_curves[label])},
                "psnr_at_variance": {var_key(v): p for v, p in zip(VARIANCES, dig_lab[label])},
                "fallback_share_at_snr": {db_key(snr): p for snr, p in zip(SNRS, fallback[label])},
                "mean_quality_at_snr": {db_key(snr): q for snr, q in zip(SNRS, d["mean_quality"][: len(SNRS)])},
            }
    tree["n_reals"] = n_reals
    return dig_curves, dig_lab, fallback


def _span(snrs: list[int]) -> str:
    if not snrs:
        return "no tested SNR"
    return f"{snrs[0]} dB" if len(snrs) == 1 else f"{snrs[0]}-{snrs[-1]} dB ({len(snrs)} of {len(SNRS)} tested SNRs)"


def _verdict(
    curves: Mapping[str, list[float]],
    digital: Mapping[str, list[float]],
    fallback: Mapping[str, list[float]],
    trained: Mapping[str, float],
) -> str:
    """The answer a reader wants, from the numbers: where the autoencoders win, and how each side falls."""
    ae_best = np.max([curves[k] for k in curves], axis=0)
    dig_best = np.max([digital[k] for k in digital], axis=0)
    best_label = max(digital, key=lambda k: float(np.mean(digital[k])))
    wins = [snr for snr, a, d in zip(SNRS, ae_best, dig_best) if a > d]
    parts = [
        f"The best autoencoder beats the best digital variant (any codec, either byte count) at {_span(wins)}"
        + (f"; the largest margin is {float(np.max(ae_best - dig_best)):.1f} dB" if wins else "")
        + f" (best digital curve on average: {best_label})."
    ]
    file_labels = [k for k in digital if "file" in k]
    if file_labels:
        file_best = np.max([digital[k] for k in file_labels], axis=0)
        wins_file = [snr for snr, a, d in zip(SNRS, ae_best, file_best) if a > d]
        parts.append(f"Against whole files, which a real receiver needs, it wins at {_span(wins_file)}.")
    for label, share in fallback.items():
        usable = [snr for snr, f in zip(SNRS, share) if f < 0.5]
        parts.append(
            f"{label}: the mean-colour fallback covers {share[0]:.0%} of photos at {SNRS[0]} dB and "
            f"{share[-1]:.0%} at {SNRS[-1]} dB"
            + (f"; most photos get a file from {usable[0]} dB up" if usable else "; most photos never get a file")
            + "."
        )
    drops = []
    for name, ys in curves.items():
        steps = np.diff(ys)
        drops.append(
            f"{name} {ys[-1]:.1f} -> {ys[0]:.1f} dB (largest 1 dB step {float(np.max(np.abs(steps))):.2f} dB"
            + (f", trained at {trained[name]:.2f} dB" if name in trained else "")
            + ")"
        )
    dig_steps = {k: float(np.max(np.abs(np.diff(v)))) for k, v in digital.items()}
    worst = max(dig_steps, key=dig_steps.get)
    parts.append(
        "From 25 to 0 dB the autoencoders degrade gradually: "
        + "; ".join(drops)
        + f". The digital curves move in steps as the budget crosses file sizes and drop to the flat "
        f"mean-colour image once no file fits (largest 1 dB step: {worst}, {dig_steps[worst]:.2f} dB): that is "
        "the cliff."
    )
    low, high = max(curves, key=lambda k: curves[k][0]), max(curves, key=lambda k: curves[k][-1])
    parts.append(f"Best autoencoder at {SNRS[0]} dB: {low}; at {SNRS[-1]} dB: {high}.")
    return " ".join(parts)


CHANNEL = Part("channel", "PSNR vs channel SNR against JPEG/WebP at capacity", compute_channel, write)
CHANNEL16 = Part("channel16", "the same at a 16x16x16 latent", compute_channel16, write, default=False)
