import csv

import pytest
import torch

from aelab import MLPAutoencoder, TrainConfig, UserError, fit
from aelab.checkpoint import load_checkpoint
from aelab.data.mnist import read_idx_folder
from aelab.data.scaling import unit
from aelab.losses import bce, denoising, squared_weights
from aelab.speed import make_optimizer
from aelab.train import TrainLog, lr_lambda, train_step

CPU = torch.device("cpu")


@pytest.fixture
def digits(tiny_mnist):
    return read_idx_folder(tiny_mnist)


def test_short_training_lowers_the_loss(digits, tmp_path):
    model = MLPAutoencoder(hidden=(64, 32), bottleneck=8)
    cfg = TrainConfig(epochs=6, batch_size=32, lr=3e-3)
    log = TrainLog(tmp_path / "log.csv")
    hist = fit("m", model, bce, digits.train, digits.test, unit, cfg, CPU, tmp_path / "m.pt", log)
    assert len(hist) == 6
    assert hist[-1]["test_loss"] < 0.8 * hist[0]["test_loss"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    rows = list(csv.DictReader((tmp_path / "log.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == [str(i) for i in range(1, 7)] and rows[0]["model"] == "m"
    state = load_checkpoint(tmp_path / "m.pt")
    assert state["epoch"] == 6 and state["model_class"] == "MLPAutoencoder"
    assert not model.training


def test_finished_checkpoint_is_reloaded_not_retrained(digits, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=64)
    a = MLPAutoencoder(hidden=(32,), bottleneck=2)
    fit("m", a, bce, digits.train, digits.test, unit, cfg, CPU, tmp_path / "m.pt")
    b = MLPAutoencoder(hidden=(32,), bottleneck=2)
    hist = fit("m", b, bce, digits.train, digits.test, unit, cfg, CPU, tmp_path / "m.pt")
    assert len(hist) == 2
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_same_seed_same_weights(digits):
    def run():
        torch.manual_seed(0)
        m = MLPAutoencoder(hidden=(32,), bottleneck=2)
        fit("m", m, denoising("bce", 0.4), digits.train, digits.test, unit, TrainConfig(epochs=2, batch_size=64), CPU)
        return m

    a, b = run(), run()
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_non_finite_loss_names_model_epoch_and_batch(digits, tmp_path):
    calls = {"n": 0}

    def explodes(model, x, gen):
        calls["n"] += model.training  # count training steps only
        loss = bce(model, x, gen)
        return loss * float("nan") if calls["n"] > 10 else loss

    cfg = TrainConfig(epochs=3, batch_size=64)  # 4 batches per epoch: batch 11 is epoch 3, batch 3
    with pytest.raises(UserError, match=r"non-finite loss while training boom: epoch 3, batch 3"):
        fit(
            "boom", MLPAutoencoder(hidden=(16,)), explodes, digits.train, digits.test, unit, cfg, CPU, tmp_path / "b.pt"
        )
    assert load_checkpoint(tmp_path / "b.pt")["epoch"] == 2  # the last good checkpoint stays


def test_squared_weights_sum_the_weight_matrices_only(digits):
    model = MLPAutoencoder(hidden=(16,))
    expected = sum(p.pow(2).sum() for n, p in model.named_parameters() if n.endswith("weight"))
    assert torch.allclose(squared_weights(model), expected) and float(expected.detach()) > 0


@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_l2_penalty_in_the_optimizer_takes_the_steps_of_the_penalty_in_the_loss(digits, weight_decay):
    """``TrainConfig.l2_penalty`` gives the same weights, step for step, as ``lambda * sum(w^2)`` in the loss."""
    lam = 0.05  # large, so a mistake in the factor 2 or in which tensors it covers shows
    x = unit(digits.train[:32])
    torch.manual_seed(0)
    in_loss, in_opt = MLPAutoencoder(hidden=(16,)), MLPAutoencoder(hidden=(16,))
    start = {k: v.clone() for k, v in in_loss.state_dict().items()}
    in_opt.load_state_dict(start)
    opt_loss = make_optimizer(in_loss, TrainConfig(lr=1e-2, weight_decay=weight_decay))
    opt_opt = make_optimizer(in_opt, TrainConfig(lr=1e-2, weight_decay=weight_decay, l2_penalty=lam))
    for _ in range(5):
        train_step(in_loss, lambda m, x, g: bce(m, x) + lam * squared_weights(m), opt_loss, x, None, False)
        train_step(in_opt, bce, opt_opt, x, None, False)
    for (name, a), b in zip(in_loss.named_parameters(), in_opt.parameters()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), name
    plain = MLPAutoencoder(hidden=(16,))  # and the penalty did change the steps
    plain.load_state_dict(start)
    opt_plain = make_optimizer(plain, TrainConfig(lr=1e-2, weight_decay=weight_decay))
    for _ in range(5):
        train_step(plain, bce, opt_plain, x, None, False)
    assert not torch.allclose(plain.encoder[0].weight, in_opt.encoder[0].weight, rtol=1e-4, atol=1e-5)


def test_cosine_schedule_warms_up_and_decays():
    f = lr_lambda(1000, "cosine")
    assert f(0) < 0.1 and f(20) == pytest.approx(1.0, abs=0.01) and f(999) == pytest.approx(0.05, abs=0.01)
    assert lr_lambda(10, "constant")(7) == 1.0


@pytest.mark.skipif(not torch.set_flush_denormal(False), reason="this CPU cannot flush subnormal floats")
def test_fit_flushes_subnormals_on_every_thread_and_restores_the_setting(digits):
    """The guard against the subnormal stall (some Intel cores take a slow path on them, several times slower
    once training is under way): inside fit, on the CPU, every intra-op thread treats subnormals as zero, even
    when torch's thread pool started before fit did; afterwards the process is as fit found it."""
    from aelab.speed import subnormals_flushed

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.full((1 << 18,), 1.0).mul(2.0)  # the pool exists before fit starts
        assert not subnormals_flushed()
        seen = []
        model = MLPAutoencoder(hidden=(16,), bottleneck=2)
        fit("m", model, bce, digits.train[:64], digits.test[:32], unit, TrainConfig(epochs=2, batch_size=32), CPU,
            on_epoch=[lambda *_: seen.append(subnormals_flushed())])  # fmt: skip
        assert seen == [True, True]
        assert not subnormals_flushed()
    finally:
        torch.set_num_threads(threads)


def test_training_loop_reads_in_one_sitting():
    """fit is the epoch loop only (resume, one epoch, save, stops explained live in their own functions)."""
    import inspect

    from aelab import train

    assert len(inspect.getsource(train.fit).splitlines()) <= 60
