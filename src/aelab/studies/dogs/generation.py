"""Part ``generation``: does sampling a latent space generate photos? A classifier two-sample test
(:mod:`aelab.two_sample`) of each set of decoded images against the held-out photos, with the plain AE's
reconstructions of those photos as the reference; and, the sharper question, of each model's decoded
Gaussian samples against the same model's reconstructions of the held-out photos, where 50% means the
Gaussian covers the codes the decoder knows (both sets are decoder outputs, so the decoder's blur no longer
decides the answer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from aelab.report import listing
from aelab.studies.dogs.recipes import var_key
from aelab.studies.dogs.sampling import BLEND, blend, draw
from aelab.studies.parts import Part
from aelab.two_sample import MIN_IMAGES, chance_band, two_sample_accuracy

if TYPE_CHECKING:
    from aelab.studies.dogs.context import DogsRun

EPOCHS = 30  # the critic's training epochs (QUICK_EPOCHS in a quick run)
QUICK_EPOCHS = 3
# The verdict, on the critic's held-out accuracy (a set's accuracy moves by a few points with the seed alone):
NEAR_CHANCE = 0.05  # at most 5 points above 50%: not told apart from photos (or from the reconstructions)
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
    vs_recon: dict[str, float] = field(default_factory=dict)  # model -> its samples against its reconstructions


def _as_photo(x: torch.Tensor) -> torch.Tensor:
    """Rounded to 8 bits like the photos, so the critic cannot tell a decoder's output by its finer levels."""
    return (x * 255).round() / 255


def models(run: DogsRun) -> list[str]:
    """The models whose Gaussian samples are tested: the plain AE and each noisy model."""
    return ["ae", *(f"noisy_var{var_key(v)}" for v in run.cfg.variances)]


def keys(run: DogsRun) -> list[str]:
    """The sets compared with the held-out photos, in table order (their metrics.json keys)."""
    return ["reconstruction", *models(run), "blend"]


def images(run: DogsRun, key: str) -> torch.Tensor:
    """One set, as many images as there are held-out photos. The Gaussian samples are those of the gauss and
    noisy parts (:mod:`aelab.studies.dogs.sampling`: same fit, same seed), so theirs come first here."""
    n = len(run.x)
    if key == "reconstruction":
        return run.reconstructions("ae")
    name = "ae" if key == "blend" else key
    codes = run.train_codes if name == "ae" else run.codes_of(name, run.data.train[run.gauss_idx])
    drawn = draw(run, codes, n)[1]
    if key == "blend":  # each sample blended with a real code, cycling over the training codes
        drawn = blend(drawn, codes[torch.arange(n) % len(codes)])
    return run.decode(name, drawn)


def against_reconstructions(samples: torch.Tensor, reconstructions: torch.Tensor, epochs: int, seed: int) -> float:
    """The sharper question for one model: the critic's held-out accuracy telling its decoded samples from its
    reconstructions of held-out photos, both rounded to 8 bits (50%: the Gaussian covers the codes the decoder
    knows)."""
    return two_sample_accuracy(_as_photo(samples), _as_photo(reconstructions), epochs, seed)


def compute(run: DogsRun) -> GenerationResult:
    epochs, n = (QUICK_EPOCHS if run.cfg.quick else EPOCHS), len(run.x)
    if n < MIN_IMAGES:  # a tiny quick run: no test, no models trained for it (NaN: null in metrics.json)
        nan = float("nan")
        return GenerationResult(dict.fromkeys(keys(run), nan), n, epochs, dict.fromkeys(models(run), nan))
    seed = run.cfg.seed + 17
    acc, vs_recon = {}, {}
    for key in keys(run):
        decoded = _as_photo(images(run, key))
        acc[key] = two_sample_accuracy(decoded, run.x, epochs, seed)
        if key in models(run):
            vs_recon[key] = against_reconstructions(decoded, run.reconstructions(key), epochs, seed)
    return GenerationResult(acc, n, epochs, vs_recon)


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


def names(keys: list[str]) -> str:
    """The models of ``keys`` in words: "the plain AE and the noisy models at variances 0.05 and 0.1"."""
    out = ["the plain AE"] if "ae" in keys else []
    noisy = [k.removeprefix("noisy_var") for k in keys if k.startswith("noisy_var")]
    if len(noisy) == 1:
        out.append(f"the noisy model at variance {noisy[0]}")
    elif noisy:
        out.append(f"the noisy models at variances {listing(noisy)}")
    return listing(out)


def _pct(accs: list[float]) -> str:
    lo, hi = min(accs), max(accs)
    return f"{lo:.0%}" if f"{lo:.0%}" == f"{hi:.0%}" else f"{lo:.0%} to {hi:.0%}"


def _each(acc: dict[str, float], keys: list[str]) -> str:
    """ "52% for the plain AE, 61% for the noisy model at variance 0.05 and ..." """
    return listing([f"{acc[k]:.0%} for {names([k])}" for k in keys])


def _reference(ref: float, what: str) -> str:
    if what == "chance":
        found = f"the critic cannot tell them from the photos ({ref:.0%})."
    elif ref >= PLAIN:
        found = (
            f"even they are told from the photos almost always ({ref:.0%}), so this critic sees what marks a "
            "decoder's output, and a sampled set counts as generated only if its accuracy falls near 50%."
        )
    else:
        found = f"the critic tells them from the photos {ref:.0%} of the time."
    return (
        "The plain AE's reconstructions of the held-out photos are the reference: decoder outputs that had the photo "
        f"itself to go on; {found}"
    )


def _against_photos(acc: dict[str, float], what: dict[str, str], sampled: list[str], ref: float) -> str:
    passing = [k for k in sampled if what[k] in GENERATES]
    on_par = [k for k in sampled if what[k] == "reference"]
    failing = [k for k in sampled if k not in passing and k not in on_par]
    if not passing:
        finding = (
            "No latent space generates by this test: the critic tells every set of decoded Gaussian samples from "
            f"the photos ({_pct([acc[k] for k in sampled])})."
        )
    else:
        how = [f"{names([k])} ({acc[k]:.0%}, not told apart from the photos)" for k in passing]
        finding = f"By this test, sampling generates for {listing(how)}."
    if on_par:
        finding += (
            f" The samples of {names(on_par)} ({_pct([acc[k] for k in on_par])}) are told from the photos no more "
            f"easily than the reconstructions ({ref:.0%}): as photo-like as what the decoder makes of a real photo, "
            "which still does not pass for one."
        )
    if failing and (passing or on_par):
        finding += f" The others' samples are told apart more easily ({_pct([acc[k] for k in failing])})."
    return finding


def _noisy_vs_plain(acc: dict[str, float], sampled: list[str]) -> str:
    noisy = [k for k in sampled if k.startswith("noisy_var")]
    if not noisy or "ae" not in acc:
        return ""
    signs = {(d > NEAR_REFERENCE) - (d < -NEAR_REFERENCE) for d in (acc[k] - acc["ae"] for k in noisy)}
    how = {
        frozenset({-1}): "less easily than",
        frozenset({0}): "about as easily as",
        frozenset({1}): "more easily than",
        frozenset({-1, 0}): "no more easily than",
        frozenset({0, 1}): "no less easily than",
    }.get(frozenset(signs), "sometimes more, sometimes less easily than")
    return (
        f"The noisy models' samples are told from the photos {how} the plain AE's "
        f"({_pct([acc[k] for k in noisy])}, against {acc['ae']:.0%})."
    )


def _against_reconstructions(vs: dict[str, float], n: int) -> str:
    """The sharper question's finding: do the samples differ from what the same decoder makes of real photos?"""
    vs = {k: a for k, a in vs.items() if a == a}
    if not vs:
        return ""
    head = (
        "The sharper question: each model's Gaussian samples against that model's own reconstructions of the "
        "held-out photos. Both sets are decoder outputs, so the decoder's blur no longer decides; 50% means the "
        f"Gaussian covers the codes the decoder knows. The critic scores {_each(vs, list(vs))}."
    )
    if not judged(n):
        return head + " Too few images per set to read these numbers."
    covered = [k for k in vs if vs[k] <= 0.5 + NEAR_CHANCE]
    apart = [k for k in vs if k not in covered]
    out = [head]
    if covered:
        out.append(
            f"For {names(covered)} that is near 50%: the samples decode to images the critic cannot tell from the "
            "decoder's reconstructions of real photos, so what gives the samples away is the decoder, not the "
            "Gaussian."
        )
    if apart:
        out.append(
            f"For {names(apart)} the critic still tells the samples from the reconstructions "
            f"({_pct([vs[k] for k in apart])}): the Gaussian also draws codes unlike those of real photos, so the "
            "sampling, not only the decoder, gives the samples away."
        )
    return " ".join(out)


def _blend(acc: dict[str, float], what: dict[str, str]) -> str:
    if "blend" not in acc:
        return ""
    return f"The lab's blend scores {acc['blend']:.0%}: " + (
        f"close to photos, but {1 - BLEND:.0%} of each blended code is a real training photo's, so this does "
        "not show that the latent space generates."
        if what["blend"] in GENERATES
        else f"even with {1 - BLEND:.0%} of each code taken from a real training photo, the critic tells it "
        "from the photos."
    )


def prose(res: GenerationResult) -> str:
    """The findings, one per paragraph (separated by blank lines)."""
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
    sampled = [k for k in acc if k not in ("reconstruction", "blend")]
    rule = (
        f"A set counts as generated when its accuracy is at most {100 * NEAR_CHANCE:.0f} points above 50%, and as "
        f"photo-like as the reconstructions when at most {100 * NEAR_REFERENCE:.0f} points above theirs and below "
        f"{PLAIN:.0%}; with {n} images per set, chance alone moves an accuracy by about "
        f"{100 * chance_band(n):.0f} points."
    )
    paragraphs = [
        _reference(ref, what["reconstruction"]),
        _against_photos(acc, what, sampled, ref),
        _noisy_vs_plain(acc, sampled),
        _against_reconstructions(res.vs_recon, n),
        _blend(acc, what),
        rule,
    ]
    return "\n\n".join(p for p in paragraphs if p)


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
    r.text(
        "The last column asks the sharper question: the same critic, the same samples, against the same model's "
        "reconstructions of the held-out photos (noise-free channel) instead of the photos."
    )
    r.metric(
        "generation",
        {
            k: {
                "two_sample_acc": a,
                "n": res.n,
                **({"vs_reconstructions_acc": res.vs_recon[k]} if k in res.vs_recon else {}),
            }
            for k, a in res.acc.items()
        },
    )
    r.table(
        ["set", "critic's held-out accuracy against the photos (%)", "against the model's own reconstructions (%)"],
        [[label(k), 100 * a, 100 * res.vs_recon[k] if k in res.vs_recon else "-"] for k, a in res.acc.items()],
        digits=1,
    )
    r.text(prose(res))


PART = Part(
    "generation",
    "do Gaussian samples of the latent space look like photos? (classifier two-sample test)",
    compute,
    write,
)
