"""Both dog architectures (the JSCC layout and the lab's) as models: shapes, range, channel, SNR input, training."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from aelab.cli import main
from aelab.data.scaling import signed
from aelab.models.channel import AWGNChannel, power_normalize
from aelab.models.conv import ConvAutoencoder
from aelab.models.jscc import JSCCAutoencoder, macs_per_image
from aelab.models.layers import GDN, ClampST, ResidualBlock, SNRAttention
from aelab.models.registry import build, from_spec, spec_of
from aelab.train import TrainConfig, fit

from conftest import write_dog_photos

ARCHS = {"jscc": JSCCAutoencoder, "lab": ConvAutoencoder}


def make(arch: str, channel: AWGNChannel | None = None) -> torch.nn.Module:
    torch.manual_seed(0)
    return ARCHS[arch](channel=channel)


def photos(n: int = 8) -> torch.Tensor:
    return torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1


@pytest.mark.parametrize("arch", ARCHS)
def test_latent_is_16x8x8_and_output_in_range(arch):
    with torch.no_grad():
        out = make(arch)(photos(3) * 5)  # inputs far outside [-1, 1] must still give outputs inside it
    assert out["z"].shape == (3, 16, 8, 8) and out["x_hat"].shape == (3, 3, 64, 64)
    assert float(out["x_hat"].min()) >= -1 and float(out["x_hat"].max()) <= 1


def test_jscc_latent16_and_bad_sizes():
    assert JSCCAutoencoder(latent_size=16)(photos(2))["z"].shape == (2, 16, 16, 16)
    with pytest.raises(ValueError):
        JSCCAutoencoder(latent_size=12)
    with pytest.raises(ValueError):
        JSCCAutoencoder(widths=(8, 8))


@pytest.mark.parametrize("arch", ARCHS)
def test_code_sent_has_unit_power_per_sample(arch):
    model = make(arch, AWGNChannel(0.1)).eval()
    sent = model(photos(6) * torch.linspace(0.1, 1, 6).view(6, 1, 1, 1))["z_sent"]
    assert torch.allclose(sent.flatten(1).pow(2).mean(1), torch.ones(6), atol=1e-4)


def test_jscc_without_channel_still_sends_a_power_normalised_code():
    out = make("jscc").eval()(photos(4))
    assert torch.allclose(out["z_sent"], power_normalize(out["z"]))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("variance", [0.05, 0.15])
def test_noise_has_the_flagged_variance(arch, variance):
    model = make(arch, AWGNChannel(variance)).eval()
    x = photos(16)
    with torch.no_grad():
        clean = model(x, noise=False)["z_sent"]
        noisy = model(x, noise=True, generator=torch.Generator().manual_seed(0))["z_sent"]
    assert float((noisy - clean).var()) == pytest.approx(variance, rel=0.05)


def test_snr_adaptive_channel_draws_each_sample_in_its_range():
    ch = AWGNChannel(0.1, snr_range=(5.0, 15.0)).train()
    var = ch.sample_variance(2000, generator=torch.Generator().manual_seed(0))
    snr = 10 * torch.log10(1 / var)
    assert float(snr.min()) >= 5.0 and float(snr.max()) <= 15.0 and float(snr.std()) > 2.0
    # the SNR a model is told: true within the range, clamped outside it; a fixed channel tells its own
    told = ch.side_snr(torch.tensor([0.0, 10**-1.0, 1.0]))
    assert told.tolist() == pytest.approx([15.0, 10.0, 5.0])
    assert AWGNChannel(0.1).side_snr(torch.tensor([0.5])).tolist() == pytest.approx([10.0])
    with pytest.raises(ValueError):
        AWGNChannel(0.1, snr_range=(15.0, 5.0))


def test_the_snr_input_changes_the_jscc_output():
    model = make("jscc", AWGNChannel(0.1, snr_range=(0.0, 20.0))).eval()
    x = photos(2)
    # the attention modules start as the identity (zero last layer), so a warm start is unchanged ...
    assert torch.equal(model.decode(model.encode(x, torch.full((2,), 3.0)), torch.full((2,), 3.0)),
                       model.decode(model.encode(x, torch.full((2,), 18.0)), torch.full((2,), 18.0)))  # fmt: skip
    for m in (model.encoder_attention, model.decoder_attention):
        torch.nn.init.normal_(m.mlp[-1].weight, std=0.5)
    # ... and once trained, the same photo and code decode differently on a 3 dB and an 18 dB channel
    with torch.no_grad():
        z = model.encode(x, torch.full((2,), 10.0))
        low, high = model.decode(z, torch.full((2,), 3.0)), model.decode(z, torch.full((2,), 18.0))
    assert float((low - high).abs().mean()) > 0.005 * float(low.abs().mean())
    assert not torch.equal(model.encode(x, torch.full((2,), 3.0)), model.encode(x, torch.full((2,), 18.0)))


@pytest.mark.parametrize("arch", ARCHS)
def test_a_short_training_run_lowers_the_loss(arch):
    data = (torch.rand(96, 3, 8, 8, generator=torch.Generator().manual_seed(2)) * 255).to(torch.uint8)
    data = F.interpolate(data.float(), size=64, mode="bilinear").to(torch.uint8)  # smooth, learnable photos
    model = make(arch, AWGNChannel(0.1))
    lr = 1e-3 if arch == "jscc" else 2e-3
    cfg = TrainConfig(epochs=4, batch_size=16, lr=lr, seed=0, clip_grad=1.0 if arch == "jscc" else 0.0)
    objective = lambda m, x, gen=None: F.mse_loss(m(x, generator=gen)["x_hat"].float(), x)  # noqa: E731
    history = fit(arch, model, objective, data[:80], data[80:], signed, cfg, torch.device("cpu"))
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"]
    assert history[-1]["test_loss"] < history[0]["test_loss"]


def test_layers():
    x = torch.randn(2, 8, 4, 4)
    gdn = GDN(8)
    expected = x / (1.0 + 1e-6 + 0.1 * x * x).sqrt()  # identity gamma at init: each channel by its own energy
    assert torch.allclose(gdn(x), expected, atol=1e-5)
    assert torch.equal(ResidualBlock(8)(x), x)  # starts as the identity
    assert torch.equal(SNRAttention(8)(x, torch.tensor([0.0, 20.0])), x)
    y = torch.tensor([-3.0, 0.5, 2.0], requires_grad=True)
    out = ClampST()(y)
    out.sum().backward()
    assert out.tolist() == [-1.0, 0.5, 1.0] and y.grad.tolist() == [1.0, 1.0, 1.0]


def test_jscc_costs_about_what_the_lab_layout_does():
    jscc, lab = macs_per_image(JSCCAutoencoder()), macs_per_image(ConvAutoencoder())
    assert 0.5 < jscc / lab < 1.2


def test_jscc_rebuilds_from_its_spec():
    model = build(JSCCAutoencoder, latent_channels=16, channel=build(AWGNChannel, variance=0.1, snr_range=[5.0, 15.0]))
    again = from_spec(json.loads(json.dumps(spec_of(model))))
    assert isinstance(again, JSCCAutoencoder) and again.channel.snr_range == (5.0, 15.0)
    again.load_state_dict(model.state_dict())


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_checkpoints_of_both_architectures_rebuild_through_aelab_evaluate(tmp_path, arch, capsys):
    photos_dir = write_dog_photos(tmp_path / "photos", 40, 50, (64, 64))
    out = tmp_path / "run"
    args = ["dogs", "--data", str(photos_dir), "--quick", "--out", str(out), "--arch", arch, "--parts", "ae,noisy"]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["arch"] == arch and ("lab" in metrics) == (arch == "jscc")
    report = tmp_path / "eval.json"
    assert main(["evaluate", str(out), "--data", str(photos_dir), "--json", str(report)]) == 0
    scores = json.loads(report.read_text())
    assert scores["ae"]["test_psnr"] > 5
    assert scores["noisy"]["0.1"]["variance"] == pytest.approx(0.1)
    if arch == "jscc":
        assert scores["lab"]["ae"]["test_psnr"] > 5 and "0.05" in scores["lab"]["noisy"]
