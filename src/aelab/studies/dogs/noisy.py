"""Part ``noisy``: one autoencoder per noise variance with a power-normalised, noisy latent; PSNR with and
without noise, PSNR vs SNR, and how near its Gaussian samples land to the training photos (whether they
look like photos is part ``generation``'s two-sample test)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from aelab import plots
from aelab.evaluate import mean_psnr, nearest_psnr
from aelab.models.channel import snr_db
from aelab.report import listing
from aelab.studies.dogs.recipes import ADAPTIVE_SNR, ARCH_NAME, LAB_PREFIX, var_key
from aelab.studies.dogs.sampling import gauss_samples, generates
from aelab.studies.parts import Part

if TYPE_CHECKING:
    from aelab.studies.dogs.context import DogsRun

EVAL_VARIANCES = (0.0025, 0.01, 0.05, 0.1, 0.15, 0.3)  # the PSNR-vs-SNR curve of every noisy model


@dataclass
class NoisyResult:
    metrics: dict[str, dict]  # variance key -> metrics.json entry (the default architecture's per-variance models)
    curve_variances: list[float]
    curves: dict[str, list[float]]
    samples: dict[str, torch.Tensor]  # row label -> decoded Gaussian samples
    ae_psnr: float
    ae_sample_psnr: float  # the plain AE's samples' mean PSNR to their nearest training photo
    reference: float  # held-out reconstructions' mean PSNR to their nearest training photo
    epochs: int
    arch: str = "lab"
    adaptive: dict[str, dict] = field(default_factory=dict)  # variance key -> scores of the SNR-adaptive model
    lab: dict[str, dict] = field(default_factory=dict)  # variance key -> scores of the lab layout's model


def _scores(run: DogsRun, model: torch.nn.Module, v: float, clean: dict | None = None) -> tuple[dict, dict, dict]:
    """Held-out scores with noise of variance ``v`` and on a noise-free channel, and both outputs (``clean``:
    the model's noise-free outputs when already computed): the scorer ``aelab evaluate`` uses."""
    return run.channel_scores(model, v, clean)


def _one(run: DogsRun, v: float, eval_vars: list[float]) -> tuple[dict, list[float], torch.Tensor]:
    name = f"noisy_var{var_key(v)}"
    model = run.model(name)
    res, noisy, clean = _scores(run, model, v)
    lab = run.outputs(model, noise=True, variance=v * v)
    power = clean["z_sent"].flatten(1).pow(2).mean(dim=1)
    codes = run.codes_of(name, run.data.train[run.gauss_idx])
    drawn = gauss_samples(run, name, codes, codes[: len(run.show)]).drawn
    res |= {
        "test_psnr_at_lab_noise": mean_psnr(lab["x01"], run.x),
        "measured_noise_variance": float((noisy["z_sent"] - clean["z_sent"]).var()),
        "latent_power_min": float(power.min()),
        "latent_power_max": float(power.max()),
        "gauss_nearest_train_psnr_mean": float(nearest_psnr(drawn, run.data.train)[0].mean()),
    }
    return res, [run.psnr_at(model, ev) for ev in eval_vars], drawn


def compute(run: DogsRun) -> NoisyResult:
    eval_vars = sorted({*(() if run.cfg.quick else EVAL_VARIANCES), *run.cfg.variances}, reverse=True)  # SNR ascending
    metrics, curves = {}, {}
    ae_drawn = gauss_samples(run, "ae", run.train_codes, run.train_codes[: len(run.show)]).drawn
    samples = {"plain AE": ae_drawn}
    for v in run.cfg.variances:
        metrics[var_key(v)], curves[f"trained at var {var_key(v)}"], samples[f"var {var_key(v)}"] = _one(
            run, v, eval_vars
        )
    adaptive, lab = {}, {}
    if "adaptive" in run.recipes:
        model = run.model("adaptive")
        clean = run.outputs(model, noise=False)
        adaptive = {var_key(v): _scores(run, model, v, clean)[0] for v in run.cfg.variances}
        curves["SNR-adaptive"] = [run.psnr_at(model, ev) for ev in eval_vars]
    if f"{LAB_PREFIX}ae" in run.recipes:
        lab = {
            var_key(v): _scores(run, run.model(f"{LAB_PREFIX}noisy_var{var_key(v)}"), v)[0] for v in run.cfg.variances
        }
    return NoisyResult(
        metrics,
        eval_vars,
        curves,
        samples,
        run.ae_scores["test_psnr"],
        float(nearest_psnr(ae_drawn, run.data.train)[0].mean()),
        run.reference_nearest_psnr,
        run.epochs(run.recipes[f"noisy_var{var_key(run.cfg.variances[0])}"]),
        run.cfg.arch,
        adaptive,
        lab,
    )


def how_trained(res: NoisyResult) -> str:
    """How the default architecture's noisy models were made, in one sentence for the report."""
    if res.adaptive:
        lo, hi = ADAPTIVE_SNR
        return (
            f"The plain AE's weights start one SNR-adaptive model, trained on SNRs drawn uniformly from {lo:g}-{hi:g} "
            "dB per photo and told each photo's SNR (ADJSCC-style attention); each per-variance model is that "
            f"model fine-tuned for {res.epochs} epochs at its own variance with a quarter of the learning rate. "
            "At equal compute, this beat fine-tuning the AE for each variance separately in the sweep recorded in "
            "benchmarks/RESULTS.md."
        )
    return f"Each noisy model trained {res.epochs} more epoch{'' if res.epochs == 1 else 's'} from the AE's weights."


def prose(res: NoisyResult) -> str:
    """The section's findings, one paragraph each: the channel does what the flags say; what it costs;
    the SNR-adaptive model and the lab's layout beside the default; what sampling the latent space gives."""
    m = res.metrics
    noise_ok = all(abs(x["measured_noise_variance"] / x["variance"] - 1) < 0.05 for x in m.values())
    lo, hi = min(x["latent_power_min"] for x in m.values()), max(x["latent_power_max"] for x in m.values())
    power_ok = abs(lo - 1) < 1e-3 and abs(hi - 1) < 1e-3
    checks = (
        ("The measured variance of the added noise matches each flag" if noise_ok else "The measured noise variance "
         "differs from a flag by 5% or more")
        + (f", and every code's mean square is 1 (range {lo:.4f} to {hi:.4f})." if power_ok else
           f"; the codes' mean squares range {lo:.4f} to {hi:.4f}, not 1.")
    )  # fmt: skip
    psnrs = listing([f"{x['test_psnr']:.1f}" for x in m.values()])
    cost = max(res.ae_psnr - x["test_psnr"] for x in m.values())
    costs = (
        f"the channel costs up to {cost:.1f} dB"
        if cost >= 0.05
        else "none of them loses to it: their extra training from its weights outweighs the noise"
    )
    result = (
        f"The lab reported 26.0, 24.9 and 24.5 dB on training images at its much lighter noise (std 0.05, 0.1 and "
        f"0.15). Here, on held-out photos at the true variances {listing(list(m))}, the noisy models reach {psnrs} dB, "
        f"against {res.ae_psnr:.1f} dB for the plain AE: {costs}."
    )
    smoothest = max(x["gauss_nearest_train_psnr_mean"] for x in m.values())
    roughest = min(x["gauss_nearest_train_psnr_mean"] for x in m.values())
    smoother = (
        "closer to the training photos than the plain AE's"
        if roughest > res.ae_sample_psnr
        else "no closer to the training photos than the plain AE's"
        if smoothest <= res.ae_sample_psnr
        else "sometimes closer to the training photos than the plain AE's, sometimes not"
    )
    any_generates = any(generates(x["gauss_nearest_train_psnr_mean"], res.reference) for x in m.values())
    verdict = (
        f"At least one noisy model's samples land as near the training photos as held-out reconstructions do "
        f"({res.reference:.1f} dB)."
        if any_generates
        else f"All of them stay well below the {res.reference:.1f} dB of held-out reconstructions: they land far "
        "from every photo the models know."
    ) + (
        " Nearness says where samples land, not whether they look like photos: part `generation` tests that "
        "directly, with a classifier two-sample test."
    )
    spread = f"{roughest:.1f}" if f"{roughest:.1f}" == f"{smoothest:.1f}" else f"{roughest:.1f} to {smoothest:.1f}"
    sampling = (
        f"Samples of a Gaussian fitted to each noisy model's codes come out {smoother} ({spread} dB to the nearest "
        f"training photo, against {res.ae_sample_psnr:.1f} dB). {verdict}"
    )
    return "\n\n".join([checks, result, *_versus(res), sampling])


def _versus(res: NoisyResult) -> list[str]:
    """What the adaptive model and the lab's layout give at the same variances, from the numbers: a paragraph each."""
    out = []
    m = res.metrics
    if res.adaptive:
        gains = [m[k]["test_psnr"] - res.adaptive[k]["test_psnr"] for k in m]
        better = "above" if min(gains) > 0 else "below" if max(gains) < 0 else "on both sides of"
        out.append(
            f"The per-variance models land {better} the SNR-adaptive model they start from "
            f"({listing([f'{g:+.2f}' for g in gains])} dB at variances {listing(list(m))})."
        )
    if res.lab:
        gains = [m[k]["test_psnr"] - res.lab[k]["test_psnr"] for k in m]
        out.append(
            f"Against the lab's layout at the same variances the default gains {listing([f'{g:+.2f}' for g in gains])} "
            f"dB (the lab's layout: {listing([format(res.lab[k]['test_psnr'], '.2f') for k in m])} dB)."
        )
    return out


def write(run: DogsRun, res: NoisyResult) -> None:
    r = run.report
    run.section("Autoencoders with a noisy latent channel")
    r.text(
        "After the encoder, each photo's code is scaled to mean square 1 over its own values (per sample), then "
        "zero-mean Gaussian noise of the given **variance** is added (std = sqrt(variance)), and the decoder "
        "reconstructs from the noisy code. SNR = 10 log10(1 / variance). Two corrections to the lab's code: it "
        "passed these numbers as the noise **std** (so its '0.05' was variance 0.0025, a 26 dB channel, not 13 dB), "
        "and it normalised the power of the whole batch at once, so one photo's code depended on the others in its "
        "batch. PSNR with noise uses one fixed noise draw per photo. " + how_trained(res)
    )
    r.metric("noisy", res.metrics)
    if res.adaptive:
        r.metric("adaptive", res.adaptive)
    if res.lab:
        r.metrics.setdefault("lab", {})["noisy"] = res.lab
    rows = []
    for k, x in res.metrics.items():
        named = [(ARCH_NAME[res.arch] + ", per variance", x), *([("SNR-adaptive", res.adaptive[k])] if res.adaptive else []),
                 *([("lab layout", res.lab[k])] if res.lab else [])]  # fmt: skip
        rows += [[k, x["snr_db"], label, y["test_psnr"], y["test_ssim"], y["test_psnr_clean"], y["test_ssim_clean"]]
                 for label, y in named]  # fmt: skip
    r.table(
        ["variance", "SNR (dB)", "model", "test PSNR (dB)", "test SSIM", "PSNR, noise-free channel (dB)",
         "SSIM, noise-free channel"],
        rows,
        digits=(0, 1, 0, 2, 3, 2, 3),
    )  # fmt: skip
    r.table(
        ["variance", "plain AE (dB)", "at the lab's noise (var = v^2)", "measured noise variance"],
        [[k, res.ae_psnr, x["test_psnr_at_lab_noise"], x["measured_noise_variance"]] for k, x in res.metrics.items()],
        digits=(0, 2, 2, 4),
    )
    r.text(
        "The 'at the lab's noise' column evaluates the same models at the lab's effective variance (its number "
        "squared), the noise the lab's own code added."
    )
    snrs = [snr_db(v) for v in res.curve_variances]
    r.figure(
        plots.curves(
            snrs,
            {**res.curves, "plain AE (no channel)": [res.ae_psnr] * len(snrs)},
            "channel SNR (dB) at evaluation",
            "test PSNR (dB)",
            marks={f"trained at var {k}": x["snr_db"] for k, x in res.metrics.items()},
            styles={"plain AE (no channel)": "--"},
        ),
        "noisy_psnr_vs_snr",
        "Each noisy model evaluated at other channel SNRs; the dot marks its training SNR.",
    )
    r.figure(
        plots.image_rows(list(res.samples.items())),
        "noisy_gauss_samples",
        "Decoded samples of a Gaussian fitted to each model's (power-normalised) training codes, same seed.",
    )
    r.table(
        ["model", "mean PSNR of samples to nearest training photo (dB)"],
        [
            ["plain AE", res.ae_sample_psnr],
            *[[f"var {k}", x["gauss_nearest_train_psnr_mean"]] for k, x in res.metrics.items()],
        ],
    )
    r.text(prose(res))


PART = Part("noisy", "autoencoders with a power-normalised, noisy latent channel", compute, write)
