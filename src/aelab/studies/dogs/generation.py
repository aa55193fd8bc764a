"""Part ``generation``: does sampling a latent space generate photos? A classifier two-sample test
(:mod:`aelab.two_sample`) of each set of decoded images against the held-out photos, with the plain AE's
reconstructions of those photos as the reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from aelab.latent import fit_gaussian
from aelab.studies.dogs.recipes import var_key
from aelab.studies.dogs.sampling import BLEND
from aelab.studies.parts import Part
from aelab.two_sample import MIN_IMAGES, chance_band, two_sample_accuracy

if TYPE_CHECKING:
    from aelab.studies.dogs.context import DogsRun

EPOCHS = 30  # the critic's training epochs (QUICK_EPOCHS in a quick run)
QUICK_EPOCHS = 3
# The verdict, on the critic's held-out accuracy (a set's accuracy moves by a few points with the seed alone):
NEAR_CHANCE = 0.05  # at most 5 points above 50%: not told apart from photos
NEAR_REFERENCE = 0.03  # at most 3 points above the reconstructions': as photo-like as reconstructions ...
PLAIN = 0.95  # ... unless at or above 95%: then the sets differ plainly, whatever the reference scores
GENERATES = ("chance",)  # the verdict that counts as "this latent space generates": only near 50%
# Judged only when chance alone (the binomial 95% band) moves an accuracy by no more than NEAR_CHANCE: from
# about 190 images per set. Fewer (a quick run) can show a plain difference but not its absence.


@dataclass
class GenerationResult:
    acc: dict[str, float]  # set key (metrics.json) -> the critic's held-out accuracy against the held-out photos
    n: int  # images per set
    epochs: int  # the critic's training epochs


def _sampled(run: DogsRun, name: str, codes: torch.Tensor, n: int, blend: bool = False) -> torch.Tensor:
    """``n`` decoded samples of a Gaussian fitted to ``codes`` (or, with ``blend``, the lab's blend of each
    sample with a real code, cycling over ``codes``); same seed as the ``gauss`` part, so its samples come first."""
    fit = fit_gaussian(codes.flatten(1).numpy())
    drawn = torch.from_numpy(fit.sample(n, run.cfg.seed + 3)).float().view(-1, *codes.shape[1:])
    if blend:
        drawn = BLEND * drawn + (1 - BLEND) * codes[torch.arange(n) % len(codes)]
    return run.decode(name, drawn)


def _as_photo(x: torch.Tensor) -> torch.Tensor:
    """Rounded to 8 bits like the photos, so the critic cannot tell a decoder's output by its finer levels."""
    return (x * 255).round() / 255


def keys(run: DogsRun) -> list[str]:
    """The sets compared with the held-out photos, in table order (their metrics.json keys)."""
    return ["reconstruction", "ae", *(f"noisy_var{var_key(v)}" for v in run.cfg.variances), "blend"]


def images(run: DogsRun, key: str) -> torch.Tensor:
    """One set, as many images as there are held-out photos."""
    n = len(run.x)
    if key == "reconstruction":
        return run.ae_outputs["x01"]
    if key in ("ae", "blend"):
        return _sampled(run, "ae", run.train_codes, n, blend=key == "blend")
    return _sampled(run, key, run.codes_of(key, run.data.train[run.gauss_idx]), n)


def compute(run: DogsRun) -> GenerationResult:
    epochs, n = (QUICK_EPOCHS if run.cfg.quick else EPOCHS), len(run.x)
    if n < MIN_IMAGES:  # a tiny quick run: no test, no models trained for it (NaN: null in metrics.json)
        return GenerationResult(dict.fromkeys(keys(run), float("nan")), n, epochs)
    seed = run.cfg.seed + 17
    acc = {k: two_sample_accuracy(_as_photo(images(run, k)), run.x, epochs, seed) for k in keys(run)}
    return GenerationResult(acc, n, epochs)


def judged(n: int) -> bool:
    """Whether ``n`` images per set are enough for the verdicts below to mean anything."""
    return chance_band(n) <= NEAR_CHANCE


def verdict(acc: float, reference: float) -> str:
    """``chance``: not told apart from photos; ``reference``: told apart no more easily than the reconstructions
    (and below ``PLAIN``); ``plain``: at or above ``PLAIN``; ``apart``: told apart, more easily than reconstructions."""
    if acc <= 0.5 + NEAR_CHANCE:
        return "chance"
    if acc >= PLAIN:
        return "plain"
    return "reference" if acc <= reference + NEAR_REFERENCE else "apart"


def label(key: str) -> str:
    if key == "reconstruction":
        return "plain AE reconstructions (reference)"
    if key == "ae":
        return "plain AE, Gaussian samples"
    if key == "blend":
        return f"plain AE, blend {BLEND:g} sample + {1 - BLEND:g} real code"
    return f"noisy, var {key.removeprefix('noisy_var')}, Gaussian samples"


def _name(key: str) -> str:
    return "the plain AE" if key == "ae" else f"the noisy model at variance {key.removeprefix('noisy_var')}"


def _pct(accs: list[float]) -> str:
    lo, hi = min(accs), max(accs)
    return f"{lo:.0%}" if f"{lo:.0%}" == f"{hi:.0%}" else f"{lo:.0%} to {hi:.0%}"


def prose(res: GenerationResult) -> str:
    acc, n = res.acc, res.n
    if n < MIN_IMAGES:
        return f"Only {n} held-out photo(s): the test needs at least {MIN_IMAGES} per set, so it did not run."
    if not judged(n):
        return (
            f"With only {n} images per set, chance alone moves an accuracy by about {100 * chance_band(n):.0f} points "
            "either way: too few to judge whether any latent space generates, so these numbers are listed, not read."
        )
    ref = acc["reconstruction"]
    what = {k: verdict(a, ref) for k, a in acc.items()}
    if what["reconstruction"] == "chance":
        reference = f"the critic cannot tell them from the photos ({ref:.0%})."
    elif ref >= PLAIN:
        reference = (
            f"even they are told from the photos almost always ({ref:.0%}), so this critic sees what marks a "
            "decoder's output, and a sampled set counts as generated only if its accuracy falls near 50%."
        )
    else:
        reference = f"the critic tells them from the photos {ref:.0%} of the time."
    reference = (
        "The plain AE's reconstructions of the held-out photos are the reference: decoder outputs that had the photo "
        f"itself to go on; {reference}"
    )
    sampled = [k for k in acc if k not in ("reconstruction", "blend")]
    passing = [k for k in sampled if what[k] in GENERATES]
    on_par = [k for k in sampled if what[k] == "reference"]
    failing = [k for k in sampled if k not in passing and k not in on_par]
    if not passing:
        finding = (
            "No latent space generates by this test: the critic tells every set of decoded Gaussian samples from "
            f"the photos ({_pct([acc[k] for k in sampled])})."
        )
    else:
        how = [f"{_name(k)} ({acc[k]:.0%}, not told apart from the photos)" for k in passing]
        finding = f"By this test, sampling generates for {'; '.join(how)}."
    if on_par:
        finding += (
            f" The samples of {', '.join(_name(k) for k in on_par)} ({_pct([acc[k] for k in on_par])}) are told from "
            f"the photos no more easily than the reconstructions ({ref:.0%}): as photo-like as what the decoder "
            "makes of a real photo, which still does not pass for one."
        )
    if failing and (passing or on_par):
        finding += f" The others' samples are told apart more easily ({_pct([acc[k] for k in failing])})."
    noisy = [k for k in sampled if k.startswith("noisy_var")]
    compare = ""
    if noisy and "ae" in acc:
        signs = {(d > NEAR_REFERENCE) - (d < -NEAR_REFERENCE) for d in (acc[k] - acc["ae"] for k in noisy)}
        how = {
            frozenset({-1}): "less easily than",
            frozenset({0}): "about as easily as",
            frozenset({1}): "more easily than",
            frozenset({-1, 0}): "no more easily than",
            frozenset({0, 1}): "no less easily than",
        }.get(frozenset(signs), "sometimes more, sometimes less easily than")
        compare = (
            f" The noisy models' samples are told from the photos {how} the plain AE's "
            f"({_pct([acc[k] for k in noisy])}, against {acc['ae']:.0%})."
        )
    blend = ""
    if "blend" in acc:
        blend = f" The lab's blend scores {acc['blend']:.0%}: " + (
            f"close to photos, but {1 - BLEND:.0%} of each blended code is a real training photo's, so this does "
            "not show that the latent space generates."
            if what["blend"] in GENERATES
            else f"even with {1 - BLEND:.0%} of each code taken from a real training photo, the critic tells it "
            "from the photos."
        )
    rule = (
        f"A set counts as generated when its accuracy is at most {100 * NEAR_CHANCE:.0f} points above 50%, and as "
        f"photo-like as the reconstructions when at most {100 * NEAR_REFERENCE:.0f} points above theirs and below "
        f"{PLAIN:.0%}; with {n} images per set, chance alone moves an accuracy by about "
        f"{100 * chance_band(n):.0f} points."
    )
    return f"{reference} {finding}{compare}{blend} {rule}"


def write(run: DogsRun, res: GenerationResult) -> None:
    r = run.report
    run.section("Generation, measured: a classifier two-sample test")
    r.text(
        f"Each set below holds {res.n} images, as many as the held-out photos. A small convolutional critic (four "
        "strided convolutions) learns to tell the set from the held-out photos on half of both and is scored on "
        f"the other half, then the halves swap ({res.epochs} epochs each; Lopez-Paz and Oquab, 2017). Its held-out "
        "accuracy is 50% when it finds nothing that tells the set from photos and 100% when they differ plainly. "
        "Decoded images are rounded to 8 bits like the photos. Each Gaussian is fitted to the same training codes "
        "as in the gauss and noisy parts and sampled with the same seed, so their samples are the first here."
    )
    r.metric("generation", {k: {"two_sample_acc": a, "n": res.n} for k, a in res.acc.items()})
    r.table(
        ["model", "held-out accuracy of the critic (%)"], [[label(k), 100 * a] for k, a in res.acc.items()], digits=1
    )
    r.text(prose(res))


PART = Part(
    "generation",
    "do Gaussian samples of the latent space look like photos? (classifier two-sample test)",
    compute,
    write,
)
