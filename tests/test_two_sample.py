"""The classifier two-sample test on real photos, and the generation part's verdict and prose."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from aelab.studies.dogs import generation
from aelab.studies.dogs.generation import GenerationResult, prose, verdict
from aelab.two_sample import chance_band, two_sample_accuracy

from conftest import DOGS_DIR, needs_dogs


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """320 real dog photos (a stable, mixed subset) at 64x64 on [0, 1], in a fixed random order: the loader
    returns them sorted by file name, that is by breed, so a plain slice would compare breeds."""
    from aelab.data.photos import load_photos

    x = load_photos(DOGS_DIR, limit=320, test_fraction=0.0, use_cache=False, progress=False).train
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))].float() / 255.0


@needs_dogs
def test_two_halves_of_the_same_photos_are_not_told_apart(photos):
    # Seeds 0-5 gave 0.494-0.528 here (binomial 95% band +-0.055 at 160 per set): 0.12 leaves room to spare.
    acc = two_sample_accuracy(photos[:160], photos[160:], epochs=5, seed=0)
    assert abs(acc - 0.5) <= 0.12


@needs_dogs
def test_photos_and_flat_grey_are_told_apart(photos):
    grey = torch.full_like(photos[:160], 0.5)  # seeds 0-5: 0.981-0.997
    assert two_sample_accuracy(photos[:160], grey, epochs=5, seed=0) >= 0.95


def test_bad_input_is_refused_and_the_global_random_state_is_left_alone():
    x = torch.rand(8, 3, 16, 16)
    with pytest.raises(ValueError, match="at least 4 images"):
        two_sample_accuracy(x[:3], x, epochs=1)
    with pytest.raises(ValueError, match="float images"):
        two_sample_accuracy((x * 255).to(torch.uint8), x, epochs=1)
    with pytest.raises(ValueError, match="one \\(3, H, W\\) shape"):
        two_sample_accuracy(x, torch.rand(8, 3, 8, 8), epochs=1)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = two_sample_accuracy(x, torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1)), 2, seed=4)
    assert torch.equal(torch.random.get_rng_state(), before)
    again = two_sample_accuracy(x, torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1)), 2, seed=4)
    assert first == again


KEYS = ["reconstruction", "ae", "noisy_var0.05", "noisy_var0.1", "noisy_var0.15", "blend"]
MODELS = KEYS[1:-1]


def _result(*acc: float, n: int = 319) -> GenerationResult:
    return GenerationResult(dict(zip(KEYS, acc, strict=True)), n, 30)


def test_verdict_thresholds():
    assert verdict(0.54, 0.56) == "chance" and verdict(0.57, 0.56) == "reference" and verdict(0.60, 0.56) == "apart"
    assert verdict(0.82, 0.80) == "reference" and verdict(0.84, 0.80) == "apart"
    assert verdict(0.60, 0.90) == "reference"  # told apart less easily than the reconstructions
    assert verdict(0.96, 0.96) == "plain"  # both at the ceiling: no evidence of generation
    assert chance_band(319) < generation.NEAR_CHANCE < chance_band(17)


def test_generation_sentences_follow_the_numbers():
    none = prose(_result(0.99, 1.0, 0.99, 1.0, 1.0, 0.97))
    assert "No latent space generates by this test" in none and "reconstructions of the held-out photos are the" in none
    assert "even they are told from the photos almost always (99%)" in none
    assert "the critic tells it from the photos" in none  # the blend
    assert "generates for" not in none

    ae = prose(_result(0.99, 0.52, 0.99, 1.0, 1.0, 0.97))  # one number flipped
    assert "sampling generates for the plain AE (52%, not told apart from the photos)" in ae
    assert "No latent space generates" not in ae and "more easily than the plain AE's" in ae

    ref = prose(_result(0.80, 0.97, 0.82, 0.90, 0.85, 0.81))
    assert "the critic tells them from the photos 80% of the time" in ref
    # as hard to tell from photos as the reconstructions is not generating: only near 50% is
    assert "No latent space generates" in ref and "generates for" not in ref
    assert "The samples of the noisy model at variance 0.05 (82%) are told from the photos no more easily" in ref
    assert "the critic tells it from the photos" in ref  # the blend, at 81%: no longer counted as generated
    assert "less easily than the plain AE's" in ref

    small = prose(_result(0.62, 0.47, 0.5, 0.5, 0.5, 0.47, n=17))
    assert "too few to judge" in small and "generates for" not in small
    assert "did not run" in prose(_result(*[float("nan")] * 6, n=3))


def test_compute_and_write_record_one_accuracy_per_set():
    """The part's plumbing on a stand-in run: tiny random 'decoders', 8 held-out images, quick epochs."""
    gen = torch.Generator().manual_seed(0)
    codes = torch.rand(6, 2, 2, 2, generator=gen)
    recorded: dict = {}
    recon = {k: torch.rand(8, 3, 16, 16, generator=gen) for k in MODELS}
    run = SimpleNamespace(
        cfg=SimpleNamespace(seed=0, quick=True, variances=(0.05, 0.1, 0.15)),
        x=torch.rand(8, 3, 16, 16, generator=gen),
        reconstructions=recon.__getitem__,
        train_codes=codes,
        gauss_idx=[0, 1, 2],
        data=SimpleNamespace(train=torch.zeros(4, 3, 16, 16, dtype=torch.uint8)),
        codes_of=lambda name, images: codes,
        decode=lambda name, z: torch.sigmoid(z.flatten(1)[:, :1, None, None].expand(-1, 3, 16, 16)),
        section=lambda title: None,
        report=SimpleNamespace(
            metric=recorded.__setitem__, table=lambda header, rows, digits: None, text=lambda text: None
        ),
    )
    res = generation.compute(run)
    assert list(res.acc) == KEYS and res.n == 8 and res.epochs == generation.QUICK_EPOCHS
    assert list(res.vs_recon) == MODELS and all(0 <= a <= 1 for a in res.vs_recon.values())
    generation.write(run, res)
    assert set(recorded["generation"]) == set(KEYS)
    assert all(v["n"] == 8 and 0 <= v["two_sample_acc"] <= 1 for v in recorded["generation"].values())
    for k in KEYS:  # the samples of the plain AE and of each noisy model, against that model's reconstructions
        assert ("vs_reconstructions_acc" in recorded["generation"][k]) == (k in MODELS)
    run.x = run.x[:3]  # too few held-out photos: no test, nothing decoded, NaN (null in metrics.json) per set
    run.decode = run.reconstructions = None
    res = generation.compute(run)
    assert list(res.acc) == KEYS and all(a != a for a in res.acc.values())
    assert list(res.vs_recon) == MODELS and all(a != a for a in res.vs_recon.values())


def _blurred(x: torch.Tensor) -> torch.Tensor:
    """A stand-in decoder's reconstructions: 4x4 average pooling, then bilinear upsampling (a decoder's blur)."""
    return F.interpolate(F.avg_pool2d(x, 4), scale_factor=4, mode="bilinear", align_corners=False)


@needs_dogs
def test_samples_against_reconstructions_is_about_chance_on_a_models_reconstructions_split_in_two(photos):
    # The generation part's second test, on one model's reconstructions split in two halves: the same
    # distribution on both sides, so the critic finds nothing (binomial 95% band +-0.055 at 160 per set;
    # seeds 0-2 gave 0.516-0.522).
    recon = _blurred(photos)
    acc = generation.against_reconstructions(recon[:160], recon[160:], epochs=5, seed=0)
    assert abs(acc - 0.5) <= 0.12
    # ... while the photos themselves against those reconstructions are told apart: the test sees the blur
    # (seeds 0-2: 0.69-0.82 after 5 epochs, against 0.52 for the halves; the band's top is 0.555)
    assert generation.against_reconstructions(photos[:160], recon[160:], epochs=5, seed=0) >= 0.62
