"""Every finding sentence of the report is chosen by the numbers: flip a number, the sentence changes."""

from __future__ import annotations

import numpy as np
import torch

from aelab.studies.dogs import ae as dogs_ae
from aelab.studies.dogs import gauss, noisy, perturb
from aelab.studies.mnist import ae, dae, explore, l2, manifold
from aelab.studies.mnist.context import Assessment


def _scores(psnr: float, knn: float = 0.5, std: tuple[float, float] = (1.0, 1.0)) -> Assessment:
    codes = np.random.default_rng(0).standard_normal((200, 2)) * np.array(std)
    return Assessment(0.2, psnr, knn, codes, codes, torch.zeros(1))


def _dae(noisy_psnr: float, narrow: float, wide: float) -> dae.DaeResult:
    models = [dae.Denoised(2, noisy_psnr, narrow, torch.zeros(1)), dae.Denoised(32, noisy_psnr, wide, torch.zeros(1))]
    return dae.DaeResult(torch.zeros(1), torch.zeros(1), models)


def test_denoiser_sentence_follows_the_sign_of_the_gain():
    up = dae.prose(_dae(10.7, 14.0, 16.0), "the writer's stroke")
    down = dae.prose(_dae(10.7, 9.6, 9.4), "the writer's stroke")
    assert "raise PSNR, from 10.7 dB to 14.0 dB" in up and "wider code is 2.0 dB better" in up
    assert "lower PSNR, from 10.7 dB to 9.6 dB" in down and "raise" not in down
    assert "not better here" in down
    mixed = dae.prose(_dae(10.7, 9.6, 12.0), "detail")
    assert "denoiser lowers PSNR" in mixed and "raises it, to 12.0 dB" in mixed


def test_explore_sentence_says_better_or_worse_from_the_numbers():
    variants = {name: _scores(12.0) for name in explore.VARIANTS}
    variants["cnn"] = _scores(11.5)
    worse = explore.prose(explore.ExploreResult(_scores(12.0), variants))
    assert "cnn -0.5 dB (worse" in worse and "No variant beats the baseline." in worse
    variants["cnn"] = _scores(12.5)
    better = explore.prose(explore.ExploreResult(_scores(12.0), variants))
    assert "cnn +0.5 dB (better" in better and "Best: cnn" in better


def test_l2_sentence_follows_spread_and_accuracy():
    labels = {"none": "none", "weight_decay": "weight decay 1e-4", "penalty": "penalty 1e-5"}

    def result(wd_std: float, acc: float) -> l2.L2Result:
        scores = {
            "none": _scores(12, 0.6),
            "weight_decay": _scores(12, acc, (wd_std, wd_std)),
            "penalty": _scores(12, 0.5),
        }
        return l2.L2Result(scores, {}, labels)

    shrink = l2.prose(result(0.5, 0.7))
    assert "weight decay gives 0.5" in shrink and "(narrower)" in shrink and "weight decay 1e-4 separates" in shrink
    widen = l2.prose(result(2.0, 0.4))
    assert "(wider)" in widen and "neither regulariser separates the classes better than none" in widen


def test_ae_and_manifold_sentences_follow_their_numbers():
    res = ae.AeResult(_scores(14.0, 0.81), [])
    assert "well above chance" in ae.prose(res, "digit")
    res.scores.knn5_acc = 0.12
    assert "about chance" in ae.prose(res, "clothing item") and "whole clothing item" in ae.prose(res, "clothing item")
    assert "nearly the whole" in manifold.prose(0.99) and "most codes lie outside" in manifold.prose(0.3)


def test_dogs_sentences_follow_their_numbers():
    history = [{"train_loss": 0.02, "test_loss": 0.021}]
    close = dogs_ae.prose(dogs_ae.AeResult({"test_psnr": 21.1}, history, 12288), 1024)
    assert "they are close" in close and "below the lab's figure" in close and "blur" in close
    history = [{"train_loss": 0.01, "test_loss": 0.02}]
    memorise = dogs_ae.prose(dogs_ae.AeResult({"test_psnr": 27.0}, history, 12288), 1024)
    assert "memorise" in memorise and "above the lab's figure" in memorise and "blur" not in memorise

    steps = [perturb.Perturbed(s, p, p - 1, torch.zeros(1)) for s, p in ((0.1, 35.0), (1.0, 15.0))]
    text = perturb.prose(steps)
    assert "barely moves (35.0 dB" in text and "beyond recognition (15.0 dB)" in text
    assert "does not fall steadily" in perturb.prose(list(reversed(steps)))


def _gauss(sample_psnr: float, source_share: float, code_negative: float = 0.0) -> gauss.GaussResult:
    fit = type("Fit", (), {"method": "Ledoit-Wolf"})()
    samples = gauss.GaussSamples(fit, torch.zeros(1), torch.zeros(1), 0.4, code_negative)
    near = torch.full((9,), sample_psnr)
    z = torch.zeros(1)
    return gauss.GaussResult(256, samples, z, near, torch.full((9,), 20.0), z, z, source_share, 19.0)


def test_generation_sentences_come_from_measured_quantities():
    far = gauss.prose(_gauss(12.0, 0.9), 1024)
    assert "lie far from every training photo (12.0 dB" in far and "edits a real image" in far
    near = gauss.prose(_gauss(18.5, 0.2), 1024)
    assert "come as close to training photos" in near and "Only 20% of the blends" in near
    assert "two-sample test" in near and "40% of the sampled values are negative" in near  # a ReLU code
    signed = gauss.prose(_gauss(18.5, 0.2, code_negative=0.45), 1024)  # a signed code (the JSCC layout's)
    assert "are negative" not in signed

    def noisy_result(sample_psnr: float, measured: float) -> noisy.NoisyResult:
        m = {"0.1": {"variance": 0.1, "measured_noise_variance": measured, "latent_power_min": 1.0,
                     "latent_power_max": 1.0, "test_psnr": 20.3, "gauss_nearest_train_psnr_mean": sample_psnr}}  # fmt: skip
        return noisy.NoisyResult(m, [], {}, {}, 21.1, 12.0, 19.0, 4)

    no = noisy.prose(noisy_result(12.5, 0.1))
    assert "land far from every photo" in no and "matches each flag" in no and "closer to the" in no
    yes = noisy.prose(noisy_result(18.5, 0.2))
    assert "land as near the training photos" in yes and "differs from a flag" in yes
    assert "part `generation` tests that directly" in yes and "generates" not in yes  # nearness is no verdict


def test_umap_sentence_says_ahead_or_behind_from_the_numbers():
    from types import SimpleNamespace

    from aelab.studies.mnist import compare

    def res(ours_knn: float, ours_trust: float) -> SimpleNamespace:
        scores = {"umap_ae": _scores(15.0, ours_knn), "umap": _scores(float("nan"), 0.95), "ae2d": _scores(15.0, 0.8)}
        for sc, mse in zip(scores.values(), (0.036, 0.0, 0.04)):
            sc.test_mse = mse
        trust = {"umap_ae": {5: ours_trust}, "umap": {5: 0.97}, "ae2d": {5: 0.96}}
        return SimpleNamespace(scores=scores, trust=trust)

    ahead = compare.umap_verdict(res(0.97, 0.98))
    assert "ahead of umap-learn's embedding on the first (95.0%)" in ahead and "ahead of it on the second" in ahead
    assert "test MSE is 0.0360 per pixel against the plain AE's 0.0400" in ahead
    mixed = compare.umap_verdict(res(0.90, 0.98))
    assert "behind umap-learn's embedding on the first" in mixed and "ahead of it on the second (0.970)" in mixed


def test_noisy_findings_are_one_paragraph_each_in_english_lists():
    def entry(v: float, psnr: float) -> dict:
        return {"variance": v, "measured_noise_variance": v, "latent_power_min": 1.0, "latent_power_max": 1.0,
                "test_psnr": psnr, "gauss_nearest_train_psnr_mean": 13.0}  # fmt: skip

    m = {"0.05": entry(0.05, 22.5), "0.1": entry(0.1, 22.0), "0.15": entry(0.15, 21.6)}
    lab = {k: {"test_psnr": x["test_psnr"] - 1.5} for k, x in m.items()}
    text = noisy.prose(noisy.NoisyResult(m, [], {}, {}, 22.9, 12.0, 19.0, 3, "jscc", {}, lab))
    paragraphs = text.split("\n\n")
    assert len(paragraphs) == 4  # the channel checks out; what it costs; against the lab's layout; sampling
    assert paragraphs[0].startswith("The measured variance") and "costs up to 1.3 dB" in paragraphs[1]
    assert "variances 0.05, 0.1 and 0.15, the noisy models reach 22.5, 22.0 and 21.6 dB" in paragraphs[1]
    assert "gains +1.50, +1.50 and +1.50 dB" in paragraphs[2] and paragraphs[3].startswith("Samples of a Gaussian")
    better = noisy.prose(noisy.NoisyResult(m, [], {}, {}, 21.0, 12.0, 19.0, 1))
    assert "none of them loses to it" in better and "costs" not in better  # noisier, yet better: said so


def test_paper_protocol_sentence_says_ahead_or_not_per_column_from_the_numbers():
    from types import SimpleNamespace

    from aelab.studies.mnist import compare

    def res(knn1: float, knn5: float, trust: float, mse: float) -> SimpleNamespace:
        row = {"knn1_acc": knn1, "knn5_acc": knn5, "trustworthiness_k5": trust, "test_mse": mse}
        paper = {"umap_ae": row, "ae2d": {**row, "knn5_acc": 0.8}, "umap": {"knn1_acc": 0.99}}
        return SimpleNamespace(paper=paper, labels={"umap_ae": "UMAP-regularised AE", "ae2d": "AE"})

    assert compare.paper_best() == {"knn1_acc": 0.9403, "knn5_acc": 0.9614, "trustworthiness_k5": 0.9675,
                                    "test_mse": 0.0360}  # fmt: skip
    mixed = compare.paper_verdict(res(0.935, 0.958, 0.952, 0.0332))
    assert "ahead of the best of the paper's rows on 1 of the 4 columns" in mixed
    assert (
        "ahead on test MSE 0.0332 against 0.0360" in mixed and "not ahead on 1-NN acc. 0.9350 against 0.9403" in mixed
    )
    assert "No network of this study is ahead" in mixed
    everywhere = compare.paper_verdict(res(0.95, 0.97, 0.975, 0.035))
    assert "on every column (ahead on 1-NN acc. 0.9500 against 0.9403;" in everywhere and "not ahead" not in everywhere
    assert "Ahead on all four columns: UMAP-regularised AE." in everywhere  # the AE's 5-NN (0.8) is not
    behind = compare.paper_verdict(res(0.9, 0.9, 0.9, 0.04))
    assert (
        "on no column ahead of the best of the paper's rows (not ahead on 1-NN" in behind and "(ahead on" not in behind
    )
