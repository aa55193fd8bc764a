"""Parts ``channel`` (a default part) and ``channel16`` (opt-in): the noisy-latent autoencoder as a
transmission system.

channel    the plain AE and every noisy-latent model evaluated at test SNRs 0..25 dB, against a digital
           pipeline (JPEG, WebP, AVIF, JPEG 2000 and, with pillow-heif, HEIF at the channel's capacity, see
           aelab.digital) given the same number of channel uses as the latent has reals, and against the best
           of those codecs at each SNR
channel16  the same at a 16x16x16 latent (k/n four times larger): a plain AE and the noisy models trained
           through the same recipes under their own checkpoint names

Both use the study's models by recipe name, so asking for ``ae,noisy,channel`` trains nothing twice.
Every number is on the held-out photos.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from aelab import digital, plots
from aelab.digital import CODECS, COUNTS, NAMES, QUALITIES, digital_psnr, envelope
from aelab.models.channel import AWGNChannel, snr_db, variance_at
from aelab.models.registry import build, from_spec, spec_of
from aelab.report import listing
from aelab.studies.dogs.config import VARIANCES
from aelab.studies.dogs.recipes import var_key
from aelab.studies.parts import Part

if TYPE_CHECKING:
    from aelab.studies.dogs.context import DogsRun

SNRS = tuple(range(0, 26))  # test SNRs (dB)
QUICK_QUALITIES = tuple(range(0, 101, 10))
BEST = "best codec"  # the digital envelope's label
JSCC_REFERENCE = (
    "For reference, Deep JSCC (Bourtsoulatze et al. 2019) reports about 30.8 dB at 13 dB SNR on CIFAR-10 "
    "(32x32 photos) with k/n = 1/6 (complex channel uses per source value, the convention of the k/n above), and a "
    "cliff for JPEG/JPEG2000 at low SNR; the papers after it (WITT, NTSCC, SwinJSCC) compare with BPG (HEVC intra: "
    "HEIF here, with pillow-heif) at capacity. Their images, resolution and bandwidth ratio differ from these, so "
    "only the shape of the curves is comparable."
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
    missing: dict[str, str] = field(default_factory=dict)  # codec that could not run here -> why


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
    codecs = digital.available_codecs()
    res.missing = {c: why for c in CODECS if c not in codecs and (why := digital.unavailable(c))}
    res.digital = digital_psnr(run.data.test, [*SNRS, *lab_snrs], math.prod(shape), codecs, qualities)
    return res


def compute_channel(run: DogsRun) -> ChannelResult:
    return _measure(run, "", run.cfg.latent_size, "digital")


def compute_channel16(run: DogsRun) -> ChannelResult:
    if run.cfg.latent_size == 16:
        return ChannelResult((16, 16, 16), "digital_latent16", {}, {}, {}, skipped="own latent")
    return _measure(run, "_latent16", 16, "digital_latent16")


def label(codec: str, count: str) -> str:
    return f"{NAMES[codec]} ({count})"


def bandwidth(n_reals: int, source_values: int) -> str:
    """The bandwidth ratio in both conventions, e.g. "k/n = 1/24 (...; 1/12 in real uses)"."""
    complex_uses = n_reals / 2
    return (
        f"k/n = {complex_uses:,.0f}/{source_values:,} = 1/{source_values / complex_uses:g} in the JSCC papers' "
        f"convention ({n_reals:,} latent reals are {complex_uses:,.0f} complex channel uses, for {source_values:,} "
        f"source values; 1/{source_values / n_reals:g} in real channel uses)"
    )


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
    codecs = list(res.digital)
    run.section(f"PSNR vs channel SNR against a digital pipeline, latent {tag}")
    r.text(
        f"Each autoencoder sends its {n_reals:,} latent reals through the power-normalised channel: "
        f"{bandwidth(n_reals, pixels)}. The noise variance is 10^(-SNR/10), for SNR 0..{SNRS[-1]} dB in 1 dB "
        "steps (one fixed noise draw per photo). The plain AE, trained without noise, gets the same per-sample "
        "power normalisation at test time."
    )
    r.text(
        f"The digital pipeline gets the same {n_reals:,} real channel uses at capacity: a budget of {n_reals:,} x "
        "0.5 log2(1 + SNR) bits per photo, delivered without error. Each photo is sent as "
        f"{listing([NAMES[c] for c in codecs], last=' or ')} at the highest quality whose size fits, counting either the "
        "whole file or only the entropy-coded payload (headers and tables known to the receiver: the digital best "
        "case); `aelab.digital` says how each codec is set and counted. When nothing fits, the receiver shows the "
        f"photo's mean colour. The {BEST} is, at each SNR, the best of every codec and byte count."
        + (" Quick run: qualities searched in steps of 10 only." if run.cfg.quick else "")
    )
    if res.missing:
        r.text("Not measured here: " + "; ".join(f"{why}" for why in res.missing.values()) + ".")
    for name in res.curves:
        r.metrics.setdefault("channel", {})[name] = {
            "psnr_at_snr": {db_key(snr): p for snr, p in zip(SNRS, res.curves[name])},
            "psnr_at_variance": {var_key(v): p for v, p in zip(VARIANCES, res.at_lab[name])},
            "trained_snr_db": res.trained.get(name),
        }
    dig_curves, dig_lab, fallback = _digital_metrics(run, res, n_reals)
    best, best_by = envelope(dig_curves)
    best_lab, best_lab_by = envelope(dig_lab)
    marks = dict(res.trained)
    r.figure(
        plots.curves(SNRS, res.curves, "channel SNR at test (dB)", "test PSNR (dB)", marks=marks),
        f"channel_psnr_vs_snr{suffix}",
        f"Latent {tag}: each autoencoder evaluated at every test SNR; the dot marks a noisy model's "
        "training SNR. The plain AE was trained without noise.",
    )
    r.figure(
        _figure(res.curves, res.digital, marks),
        f"channel_vs_digital{suffix}",
        f"Latent {tag}: the autoencoders (solid) against each codec at channel capacity (dashed), whole file (left) "
        f"and payload only (right); the wide yellow band is the best codec at each SNR.",
    )
    lab_snrs = [snr_db(v) for v in VARIANCES]
    header = ["system", *[f"var {var_key(v)} ({snr:.2f} dB)" for v, snr in zip(VARIANCES, lab_snrs)]]
    rows = [[name, *vals] for name, vals in {**res.at_lab, **dig_lab}.items()]
    r.table(header, [*rows, [BEST, *best_lab], ["which", *best_lab_by]], digits=2)
    shown = [snr for snr in (0, 5, 10, 13, 15, 20, 25) if snr in SNRS]
    r.table(
        ["system", *[f"{snr} dB" for snr in shown]],
        [
            [name, *[vals[SNRS.index(snr)] for snr in shown]]
            for name, vals in {**res.curves, **dig_curves, BEST: best}.items()
        ],
        digits=2,
    )
    r.text(_verdict(res.curves, dig_curves, fallback, res.trained, (res.at_lab, best_lab, best_lab_by)))
    r.table(
        [
            "system",
            f"PSNR at {SNRS[-1]} dB",
            f"PSNR at {SNRS[0]} dB",
            "largest 1 dB step (dB)",
            "a file for most photos from",
            f"photos without a file at {SNRS[0]} dB",
        ],
        cliff_rows(res.curves, dig_curves, fallback),
        digits=2,
    )
    r.text(JSCC_REFERENCE)


def _figure(curves: Mapping[str, list[float]], results: Mapping[str, dict], marks: Mapping[str, float]):
    """Two panels (whole file, payload): the autoencoders, each codec, and that panel's best codec."""
    fig, axes = plots.panels(2, 4.8)
    n_ae = min(len(curves), 5)  # the codecs take the colours after the autoencoders'
    for ax, count in zip(axes, COUNTS):
        for i, (name, ys) in enumerate(curves.items()):
            ax.plot(SNRS, ys, "-", color=f"C{i % 10}", lw=1.3, label=name)
            if name in marks:
                ax.plot([marks[name]], [np.interp(marks[name], SNRS, ys)], "o", color=f"C{i % 10}", ms=5)
        dig = {codec: results[codec][count]["psnr"][: len(SNRS)] for codec in results}
        ax.plot(SNRS, envelope(dig)[0], "-", color="gold", lw=7.0, alpha=0.55, zorder=0, label=BEST)
        for j, (codec, ys) in enumerate(dig.items()):
            ax.plot(SNRS, ys, "--", color=f"C{(n_ae + j) % 10}", lw=1.2, label=NAMES[codec])
        ax.set_title("whole file" if count == "file" else "payload only (headers known)", fontsize=9)
        ax.set_xlabel("channel SNR (dB)")
        ax.set_ylabel("test PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    return fig


def _digital_metrics(run: DogsRun, res: ChannelResult, n_reals: int) -> tuple[dict, dict, dict]:
    """The digital pipeline's curves by label, recorded in metrics.json under ``res.digital_key`` with the
    best codec's envelope under ``best``."""
    dig_curves: dict[str, list[float]] = {}
    dig_lab: dict[str, list[float]] = {}
    fallback: dict[str, list[float]] = {}
    tree = run.report.metrics.setdefault(res.digital_key, {})
    for codec in res.digital:
        for count in COUNTS:
            d = res.digital[codec][count]
            name = label(codec, count)
            dig_curves[name] = d["psnr"][: len(SNRS)]
            dig_lab[name] = d["psnr"][len(SNRS) :]
            fallback[name] = d["fallback_share"][: len(SNRS)]
            tree.setdefault(codec, {})[count] = {
                "psnr_at_snr": {db_key(snr): p for snr, p in zip(SNRS, dig_curves[name])},
                "psnr_at_variance": {var_key(v): p for v, p in zip(VARIANCES, dig_lab[name])},
                "fallback_share_at_snr": {db_key(snr): p for snr, p in zip(SNRS, fallback[name])},
                "mean_quality_at_snr": {db_key(snr): q for snr, q in zip(SNRS, d["mean_quality"][: len(SNRS)])},
            }
    tree["best"] = {
        "psnr_at_snr": {db_key(snr): p for snr, p in zip(SNRS, envelope(dig_curves)[0])},
        "psnr_at_variance": {var_key(v): p for v, p in zip(VARIANCES, envelope(dig_lab)[0])},
    }
    tree["codecs"] = list(res.digital)
    tree["n_reals"] = n_reals
    return dig_curves, dig_lab, fallback


def _ranges(snrs: list[int]) -> list[str]:
    """Consecutive SNRs as ranges: [0, 1, 2, 5] -> ["0-2 dB", "5 dB"]."""
    out: list[list[int]] = []
    for s in snrs:
        if out and s == out[-1][-1] + 1:
            out[-1].append(s)
        else:
            out.append([s])
    return [f"{r[0]} dB" if len(r) == 1 else f"{r[0]}-{r[-1]} dB" for r in out]


def _span(snrs: list[int]) -> str:
    if not snrs:
        return "no tested SNR"
    if len(snrs) == 1:
        return f"{snrs[0]} dB"
    return f"{listing(_ranges(snrs))} ({len(snrs)} of {len(SNRS)} tested SNRs)"


def _segments(labels: list[str]) -> str:
    """Which curve is best where, in SNR order: "JPEG (payload) at 0-3 dB and AVIF (payload) at 4-25 dB"."""
    runs: list[tuple[str, list[int]]] = []
    for snr, name in zip(SNRS, labels):
        if runs and runs[-1][0] == name:
            runs[-1][1].append(snr)
        else:
            runs.append((name, [snr]))
    return listing([f"{name} at {_ranges(snrs)[0]}" for name, snrs in runs])


def _verdict(
    curves: Mapping[str, list[float]],
    digital: Mapping[str, list[float]],
    fallback: Mapping[str, list[float]],
    trained: Mapping[str, float],
    lab: tuple[Mapping[str, list[float]], list[float], list[str]] | None = None,
) -> str:
    """The answer a reader wants, from the numbers, one finding per paragraph: where the autoencoders beat the
    best codec, at the lab's SNRs, which codec is best where, and how each side falls."""
    ae_best = np.max([curves[k] for k in curves], axis=0)
    dig_best, dig_by = envelope(digital)
    margin = ae_best - np.asarray(dig_best)
    wins = [snr for snr, m in zip(SNRS, margin) if m > 0]
    codecs = listing(list(dict.fromkeys(k.rsplit(" (", 1)[0] for k in digital)))
    first = (
        f"The best autoencoder beats the best digital codec (at each SNR the best of {codecs}, either byte "
        f"count) at {_span(wins)}"
    )
    if wins:
        at = SNRS[int(np.argmax(margin))]
        first += f"; the largest margin is {float(np.max(margin)):.1f} dB, at {at} dB"
    losses = [snr for snr in SNRS if snr not in wins]
    if losses:
        at = SNRS[int(np.argmin(margin))]
        first += f". The best codec wins at {_span(losses)}, by up to {float(-np.min(margin)):.1f} dB (at {at} dB)"
    paragraphs = [first + "."]
    if lab is not None:
        at_lab, best_lab, best_lab_by = lab
        ae_lab = np.max([at_lab[k] for k in at_lab], axis=0)
        each = [
            f"{snr_db(v):.2f} dB: {a:.2f} against {d:.2f} dB from {by}"
            for v, a, d, by in zip(VARIANCES, ae_lab, best_lab, best_lab_by)
        ]
        won = [f"{snr_db(v):.2f}" for v, a, d in zip(VARIANCES, ae_lab, best_lab) if a > d]
        paragraphs.append(
            "At the lab's three SNRs, the best autoencoder against the best codec: "
            + "; ".join(each)
            + (
                ". The best codec wins at all three."
                if not won
                else ". The autoencoder wins at all three."
                if len(won) == len(VARIANCES)
                else f". The autoencoder wins at {listing(won)} dB, the best codec at the others."
            )
        )
    flat = np.min([fallback[k] for k in fallback], axis=0) >= 1.0  # no photo gets a file from any codec
    by = ["the mean colour (no file fits)" if f else name for f, name in zip(flat, dig_by)]
    paragraphs.append(f"The best digital curve is {_segments(by)}.")
    file_labels = [k for k in digital if k.endswith("(file)")]
    if file_labels:
        file_best = envelope({k: digital[k] for k in file_labels})[0]
        wins_file = [snr for snr, a, d in zip(SNRS, ae_best, file_best) if a > d]
        paragraphs.append(
            f"Against whole files, which a real receiver needs, the best autoencoder wins at {_span(wins_file)}."
        )
    paragraphs.append(_cliff(curves, digital, fallback))
    low, high = max(curves, key=lambda k: curves[k][0]), max(curves, key=lambda k: curves[k][-1])
    how = {k: f"{k} (trained at {trained[k]:.2f} dB)" if k in trained else k for k in (low, high)}
    paragraphs.append(f"Best autoencoder at {SNRS[0]} dB: {how[low]}; at {SNRS[-1]} dB: {how[high]}.")
    return "\n\n".join(paragraphs)


def _first_fit(share: Sequence[float]) -> int | None:
    """The lowest tested SNR from which a file fits most photos (None: at no tested SNR)."""
    return next((snr for snr, f in zip(SNRS, share) if f < 0.5), None)


def _steps(ys: Sequence[float]) -> float:
    return float(np.max(np.abs(np.diff(ys))))


def cliff_rows(
    curves: Mapping[str, list[float]], digital: Mapping[str, list[float]], fallback: Mapping[str, list[float]]
) -> list[list]:
    """Per system: PSNR at the top and bottom SNR, its largest 1 dB step, and (codecs) the first SNR at which
    most photos get a file and the share of photos without one at the bottom SNR."""
    rows = [[name, ys[-1], ys[0], _steps(ys), "-", "-"] for name, ys in curves.items()]
    for name, ys in digital.items():
        first = _first_fit(fallback[name])
        rows.append(
            [name, ys[-1], ys[0], _steps(ys), "never" if first is None else f"{first} dB", f"{fallback[name][0]:.0%}"]
        )
    return rows


def _cliff(
    curves: Mapping[str, list[float]], digital: Mapping[str, list[float]], fallback: Mapping[str, list[float]]
) -> str:
    """How each side falls from 25 to 0 dB, and from which SNR each codec gets most photos a file at all."""
    ae_step = max(_steps(ys) for ys in curves.values())
    dig_steps = {k: _steps(v) for k, v in digital.items()}
    worst = max(dig_steps, key=dig_steps.get)
    text = (
        f"From {SNRS[-1]} to {SNRS[0]} dB the autoencoders degrade gradually (no 1 dB step moves one by more than "
        f"{ae_step:.2f} dB). The digital curves move in steps as the budget crosses file sizes and drop to the "
        f"flat mean-colour image once no file fits (largest 1 dB step: {worst}, {dig_steps[worst]:.2f} dB): that "
        "is the cliff."
    )
    by_count: dict[str, list[tuple[int, str]]] = {}
    never: dict[str, list[str]] = {}
    for name, share in fallback.items():
        codec, _, count = name.partition(" (")
        count = count.rstrip(")") or "file"
        first = _first_fit(share)
        if first is None:
            never.setdefault(count, []).append(codec)
        else:
            by_count.setdefault(count, []).append((first, codec))
    what = {"file": "A whole file fits most photos", "payload": "The payload alone fits most photos"}
    for count in dict.fromkeys([*by_count, *never]):
        groups: dict[int, list[str]] = {}
        for snr, codec in sorted(by_count.get(count, []), key=lambda x: x[0]):
            groups.setdefault(snr, []).append(codec)
        items = [
            f"{'from ' if i == 0 else ''}{snr} dB up with {listing(c)}" for i, (snr, c) in enumerate(groups.items())
        ]
        if never.get(count):
            items.append(f"never with {listing(never[count])}")
        text += f" {what.get(count, f'A {count} fits most photos')} {listing(items)}."
    return text + " Below that the receiver shows the mean colour."


CHANNEL = Part(
    "channel", "PSNR vs channel SNR against JPEG, WebP, AVIF, JPEG 2000 (HEIF) at capacity", compute_channel, write
)
CHANNEL16 = Part("channel16", "the same at a 16x16x16 latent", compute_channel16, write, default=False)
