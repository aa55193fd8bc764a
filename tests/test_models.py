import pytest
import torch

from aelab import AWGNChannel, ConvAutoencoder, MLPAutoencoder, MnistConvAutoencoder, power_normalize
from aelab.models.channel import snr_db, variance_at


def test_mlp_shapes_and_output_range():
    m = MLPAutoencoder(bottleneck=2)
    out = m(torch.rand(5, 1, 28, 28))
    assert out["z"].shape == (5, 2) and out["x_hat"].shape == (5, 1, 28, 28)
    assert float(out["x_hat"].min()) >= 0 and float(out["x_hat"].max()) <= 1
    assert torch.allclose(out["x_hat"], torch.sigmoid(out["logits"]))
    widths = [layer.out_features for layer in m.encoder if isinstance(layer, torch.nn.Linear)]
    assert widths == [1024, 512, 128, 2]
    assert m.decode(out["z"]).shape == (5, 1, 28, 28)


def test_mlp_rejects_bad_settings():
    with pytest.raises(ValueError):
        MLPAutoencoder(bottleneck=0)
    with pytest.raises(ValueError):
        MLPAutoencoder(activation="swish")


def test_sigmoid_everywhere_variant():
    m = MLPAutoencoder(hidden=(16,), activation="sigmoid")
    assert any(isinstance(layer, torch.nn.Sigmoid) for layer in m.encoder)
    assert not any(isinstance(layer, torch.nn.ReLU) for layer in m.modules())


def test_mnist_cnn_shapes():
    out = MnistConvAutoencoder(bottleneck=2)(torch.rand(3, 1, 28, 28))
    assert out["z"].shape == (3, 2) and out["x_hat"].shape == (3, 1, 28, 28)


@pytest.mark.parametrize("size", [8, 16])
def test_dog_autoencoder_latent_shape(size):
    m = ConvAutoencoder(latent_channels=16, latent_size=size)
    out = m(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert out["z"].shape == (2, 16, size, size) and m.latent_dim == 16 * size * size
    assert out["x_hat"].shape == (2, 3, 64, 64) and float(out["x_hat"].abs().max()) <= 1


def test_dog_autoencoder_rejects_bad_latent_size():
    with pytest.raises(ValueError):
        ConvAutoencoder(latent_size=12)


def test_power_normalisation_is_per_sample():
    z = torch.randn(4, 16, 8, 8) * torch.tensor([0.1, 1.0, 5.0, 50.0]).view(4, 1, 1, 1)
    p = power_normalize(z).pow(2).flatten(1).mean(1)
    assert torch.allclose(p, torch.ones(4), atol=1e-5)
    # one sample's normalised code does not depend on the rest of the batch (the lab's batch-wide bug)
    assert torch.allclose(power_normalize(z)[:1], power_normalize(z[:1]))


@pytest.mark.parametrize("variance", [0.05, 0.1, 0.15])
def test_channel_noise_has_the_requested_variance(variance):
    ch = AWGNChannel(variance).train()
    z = torch.randn(64, 16, 8, 8)
    g = torch.Generator().manual_seed(0)
    noise = ch(z, generator=g) - power_normalize(z)
    assert float(noise.var()) == pytest.approx(variance, rel=0.03)
    assert float(noise.mean()) == pytest.approx(0.0, abs=0.01)


def test_channel_is_clean_in_eval_unless_asked():
    ch = AWGNChannel(0.1).eval()
    z = torch.randn(8, 32)
    assert torch.equal(ch(z), power_normalize(z))
    assert not torch.equal(ch(z, noise=True), power_normalize(z))
    assert float((ch(z, noise=True, variance=1.0) - power_normalize(z)).var()) > 0.5


def test_snr_conversions():
    assert snr_db(0.1) == pytest.approx(10.0)
    assert variance_at(13.0) == pytest.approx(0.0501, rel=1e-3)
    with pytest.raises(ValueError):
        AWGNChannel(-0.1)
