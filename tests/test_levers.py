"""The free quality levers of the training loop: random flips and an EMA of the weights (opt-in per model)."""

from types import SimpleNamespace

import pytest
import torch

from aelab import MLPAutoencoder, TrainConfig, fit
from aelab.checkpoint import load_checkpoint
from aelab.data.mnist import read_idx_folder
from aelab.data.scaling import unit
from aelab.errors import TrainingInterrupted, UserError
from aelab.losses import bce
from aelab.studies.dogs.recipes import recipes
from aelab.train import evaluate_loss, flip_half, weight_average

CPU = torch.device("cpu")


@pytest.fixture
def digits(tiny_mnist):
    return read_idx_folder(tiny_mnist)


def test_flip_half_mirrors_a_seeded_random_half_left_right():
    x = torch.arange(64 * 3 * 2 * 5, dtype=torch.float32).reshape(64, 3, 2, 5)
    a = flip_half(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, flip_half(x, torch.Generator().manual_seed(1)))
    mirrored = [torch.equal(a[i], x[i].flip(-1)) for i in range(64)]
    kept = [torch.equal(a[i], x[i]) for i in range(64)]
    assert all(m != k for m, k in zip(mirrored, kept)) and 20 <= sum(mirrored) <= 44


def test_the_average_starts_as_the_model_and_follows_it_at_the_warmed_up_rate():
    model = torch.nn.Linear(3, 1)
    average = weight_average(model, decay=0.99)
    with torch.no_grad():
        model.weight.fill_(1.0)
    average.update_parameters(model)  # the first update copies
    assert torch.equal(average.module.weight, model.weight)
    with torch.no_grad():
        model.weight.fill_(2.0)
    average.update_parameters(model)  # t = 1: decay min(0.99, 2 / 11)
    assert torch.allclose(average.module.weight, torch.full((1, 3), 1.0 + 9 / 11))


def _model() -> MLPAutoencoder:
    torch.manual_seed(0)
    return MLPAutoencoder(hidden=(32,), bottleneck=4)


def test_with_an_ema_the_model_is_judged_saved_and_returned_as_the_average(digits, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=64, lr=3e-3, ema=0.9)
    model = _model()
    hist = fit("m", model, bce, digits.train, digits.test, unit, cfg, CPU, tmp_path / "m.pt")
    state = load_checkpoint(tmp_path / "m.pt")
    assert all(torch.equal(v, state["model"][k]) for k, v in model.state_dict().items())
    assert any(not torch.equal(v, state["trained"][k]) for k, v in model.state_dict().items())
    assert state["averaged_steps"] == 2 * -(-len(digits.train) // 64)
    test_loss = evaluate_loss(model, bce, digits.test, unit, 128, CPU, cfg.seed)
    assert test_loss == pytest.approx(hist[-1]["test_loss"], rel=1e-6)


@pytest.mark.parametrize("levers", [{"ema": 0.9}, {"ema": 0.9, "flip": True}])
def test_a_stopped_run_with_the_levers_resumes_to_identical_weights(digits, tmp_path, levers):
    cfg = TrainConfig(epochs=3, batch_size=64, lr=3e-3, **levers)
    straight = _model()
    fit("m", straight, bce, digits.train, digits.test, unit, cfg, CPU, tmp_path / "straight.pt")

    def stop_after_the_first_epoch(name, model, record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        fit("m", _model(), bce, digits.train, digits.test, unit, cfg, CPU, tmp_path / "m.pt",
            on_epoch=[stop_after_the_first_epoch])  # fmt: skip
    resumed = _model()
    fit("m", resumed, bce, digits.train, digits.test, unit, cfg, CPU, tmp_path / "m.pt")
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))


@pytest.mark.parametrize(("before", "after"), [(0.0, 0.9), (0.9, 0.0)])
def test_a_stopped_run_resumed_with_the_ema_switched_is_refused_in_one_line(digits, tmp_path, before, after):
    def stop_after_the_first_epoch(name, model, record):
        raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        fit("m", _model(), bce, digits.train, digits.test, unit, TrainConfig(epochs=2, batch_size=64, ema=before), CPU,
            tmp_path / "m.pt", on_epoch=[stop_after_the_first_epoch])  # fmt: skip
    with pytest.raises(UserError, match="trained (with|without) an EMA of its weights.*same --ema"):
        fit("m", _model(), bce, digits.train, digits.test, unit, TrainConfig(epochs=2, batch_size=64, ema=after), CPU,
            tmp_path / "m.pt")  # fmt: skip


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_a_finished_checkpoint_is_used_as_it_is_with_or_without_an_ema(digits, tmp_path, ema):
    cfg = TrainConfig(epochs=1, batch_size=64, ema=0.9 - ema)
    finished = _model()
    fit("m", finished, bce, digits.train, digits.test, unit, cfg, CPU, tmp_path / "m.pt")
    reloaded = _model()
    fit("m", reloaded, bce, digits.train, digits.test, unit, TrainConfig(epochs=1, batch_size=64, ema=ema), CPU,
        tmp_path / "m.pt")  # fmt: skip
    assert all(torch.equal(a, b) for a, b in zip(finished.state_dict().values(), reloaded.state_dict().values()))


def _settings(arch: str, **levers) -> dict:
    """Each recipe's TrainConfig settings for a dogs config with these levers."""

    class Run:  # what a recipe's settings read
        cfg = SimpleNamespace(**{"lr": None, "flip": False, "ema": 0.0, **levers})
        device, bf16 = CPU, False

    return {name: recipe.settings(Run()) for name, recipe in recipes((0.05, 0.1, 0.15), arch=arch).items()}


def test_the_levers_are_off_unless_asked_for():
    for settings in _settings("jscc").values():
        assert not settings["flip"] and settings["ema"] == 0


def test_flips_and_the_ema_change_nothing_in_the_lab_layouts_recipe():
    for name, settings in _settings("jscc", flip=True, ema=0.995).items():
        lab = name.startswith("lab_")
        assert (settings["flip"], settings["ema"]) == ((False, 0.0) if lab else (True, 0.995)), name
    for settings in _settings("lab", flip=True, ema=0.995).values():
        assert (settings["flip"], settings["ema"]) == (False, 0.0)


@pytest.mark.parametrize("value", ["1", "1.5", "-0.1"])
def test_an_ema_decay_outside_0_to_1_is_one_line(value, capsys, tmp_path):
    from aelab.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["dogs", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--ema", value])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--ema must be a finite number >= 0 and < 1" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_the_report_says_which_levers_were_on_and_for_whom():
    from aelab.studies.dogs.study import _levers_sentence

    assert _levers_sentence(SimpleNamespace(flip=False, ema=0.0, arch="jscc")) == ""
    both = _levers_sentence(SimpleNamespace(flip=True, ema=0.995, arch="jscc"))
    assert "mirrored left-right" in both and "decay 0.995" in both and "lab layout's keep the lab's recipe" in both
    assert "lab layout's recipe as the lab's" in _levers_sentence(SimpleNamespace(flip=True, ema=0.0, arch="lab"))
