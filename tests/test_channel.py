"""Dogs parts channel/channel16: PSNR vs SNR for the autoencoders against the digital baseline, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from aelab.cli import main
from aelab.digital import COUNTS, NAMES, available_codecs
from aelab.models.channel import snr_db
from aelab.models.conv import ConvAutoencoder
from aelab.models.jscc import JSCCAutoencoder
from aelab.models.registry import build
from aelab.studies.dogs.channel import SNRS, _verdict, db_key, with_channel

from conftest import write_dog_photos

MODELS = ["ae", "noisy_var0.05", "noisy_var0.1", "noisy_var0.15"]


def _photos(root: Path, n: int) -> Path:
    return write_dog_photos(root, n, step=97, size=(48, 48))


def test_snr_keys_and_the_lab_variances():
    assert tuple(range(26)) == SNRS
    assert [db_key(snr_db(v)) for v in (0.05, 0.1, 0.15)] == ["13.01", "10", "8.24"]


@pytest.mark.parametrize("cls", [ConvAutoencoder, JSCCAutoencoder])
def test_the_plain_ae_behind_a_normalise_only_channel_keeps_its_weights(cls):
    ae = build(cls, image_size=64, latent_channels=16, latent_size=8).eval()
    wrapped = with_channel(ae)
    assert type(wrapped) is cls and wrapped.channel.variance == 0.0
    assert all(torch.equal(a, b) for a, b in zip(ae.state_dict().values(), wrapped.state_dict().values()))
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        out = wrapped(x, noise=False)
        noisy = wrapped(x, noise=True, variance=0.1, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out["z_sent"].flatten(1).pow(2).mean(1), torch.ones(3), atol=1e-4)
    assert float((noisy["z_sent"] - out["z_sent"]).var()) == pytest.approx(0.1, rel=0.1)


def test_verdict_finds_where_the_autoencoder_wins_and_names_the_cliff():
    ae = [20.0 + 0.1 * s for s in SNRS]
    cliff = [12.0 if s < 10 else 30.0 for s in SNRS]
    text = _verdict({"noisy": ae}, {"JPEG (file)": cliff}, {"JPEG (file)": [1.0 if s < 10 else 0.0 for s in SNRS]}, {})
    assert "at 0-9 dB (10 of 26 tested SNRs)" in text
    assert "from 10 dB up" in text and "18.00 dB" in text  # the 12 -> 30 dB jump


def test_verdict_names_the_snrs_where_the_autoencoder_beats_the_best_codec():
    ae = [22.0 if s < 6 or s >= 20 else 20.0 for s in SNRS]  # wins at 0-5 dB and, against a made-up flop, 20-25 dB
    jpeg = [15.0 if s < 4 else 21.0 for s in SNRS]
    avif = [15.0 if s < 4 else 21.5 if s < 20 else 18.0 for s in SNRS]
    digital = {"JPEG (payload)": jpeg, "AVIF (payload)": avif}
    fallback = {k: [1.0 if s < 4 else 0.0 for s in SNRS] for k in digital}
    lab = ({"noisy_var0.1": [21.0, 20.0, 19.0]}, [20.5, 20.5, 20.5], ["AVIF (payload)"] * 3)
    text = _verdict({"noisy_var0.1": ae}, digital, fallback, {"noisy_var0.1": 10.0}, lab)
    assert "beats the best digital codec (at each SNR the best of JPEG and AVIF, either byte count)" in text
    assert "at 0-5 dB and 20-25 dB (12 of 26 tested SNRs)" in text  # from the numbers, against the envelope
    assert "The best codec wins at 6-19 dB (14 of 26 tested SNRs), by up to 1.5 dB" in text
    assert "13.01 dB: 21.00 against 20.50 dB from AVIF (payload)" in text and "wins at 13.01 dB, the best codec" in text
    assert "the mean colour (no file fits) at 0-3 dB, AVIF (payload) at 4-19 dB and JPEG (payload) at 20-25 dB" in text
    assert "A whole file" not in text and "The payload alone fits most photos from 4 dB up with JPEG and AVIF." in text
    assert "\n\n" in text  # one finding per paragraph
    worse = _verdict({"noisy_var0.1": [19.0] * len(SNRS)}, digital, fallback, {}, None)
    assert "beats the best digital codec" in worse and "at 4-25 dB (22 of 26 tested SNRs)" in worse


@pytest.mark.slow
def test_cli_channel_parts_write_every_key_and_reuse_the_noisy_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("AELAB_DATA", str(tmp_path / "cache"))
    folder = _photos(tmp_path / "photos", 36)
    out = tmp_path / "run"
    args = ["dogs", "--data", str(folder), "--out", str(out), "--quick", "--seed", "1"]
    assert main([*args, "--parts", "ae,noisy"]) == 0
    log = (out / "train_log.csv").read_text()
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "checkpoints").glob("*.pt")}

    assert main([*args, "--resume", "--parts", "ae,noisy,channel,channel16"]) == 0
    new_log = (out / "train_log.csv").read_text().splitlines()
    assert all(line in new_log for line in log.splitlines())  # the first run's epochs are kept, not redone
    for name, stamp in stamps.items():  # ae and noisy_var* were reloaded, not trained again
        assert (out / "checkpoints" / name).stat().st_mtime_ns == stamp, name
    assert {"ae_latent16.pt", "noisy_latent16_var0.05.pt"} <= {p.name for p in (out / "checkpoints").glob("*.pt")}

    m = json.loads((out / "metrics.json").read_text())
    dbs = [str(s) for s in SNRS]
    for model in [*MODELS, "ae_latent16", "noisy_latent16_var0.1"]:
        curve = m["channel"][model]["psnr_at_snr"]
        assert list(curve) == dbs and all(0 < p < 100 for p in curve.values())
        assert set(m["channel"][model]["psnr_at_variance"]) == {"0.05", "0.1", "0.15"}
    assert m["channel"]["noisy_var0.1"]["trained_snr_db"] == pytest.approx(10.0)
    codecs = list(available_codecs())
    assert {"jpeg", "webp"} <= set(codecs)
    for key, n in (("digital", 1024), ("digital_latent16", 4096)):
        assert m[key]["n_reals"] == n and m[key]["codecs"] == codecs
        for codec in codecs:
            for count in ("file", "payload"):
                d = m[key][codec][count]
                assert list(d["psnr_at_snr"]) == dbs and all(0 < p < 100 for p in d["psnr_at_snr"].values())
                assert set(d["psnr_at_variance"]) == {"0.05", "0.1", "0.15"}
                assert d["fallback_share_at_snr"]["0"] >= d["fallback_share_at_snr"]["25"]
        best = m[key]["best"]  # the envelope: at each SNR the best of every codec and byte count
        for db in dbs:
            assert best["psnr_at_snr"][db] == max(m[key][c][k]["psnr_at_snr"][db] for c in codecs for k in COUNTS)
        for v in ("0.05", "0.1", "0.15"):
            assert best["psnr_at_variance"][v] == max(
                m[key][c][k]["psnr_at_variance"][v] for c in codecs for k in COUNTS
            )
    # four times the channel uses never makes the digital picture worse
    assert (
        m["digital_latent16"]["webp"]["file"]["psnr_at_snr"]["10"] >= m["digital"]["webp"]["file"]["psnr_at_snr"]["10"]
    )
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"channel_psnr_vs_snr.png", "channel_vs_digital.png", "channel_vs_digital_latent16.png"} <= figures
    report = (out / "report.md").read_text()
    assert "## 7. PSNR vs channel SNR" in report and "Deep JSCC" in report and "beats the best digital" in report
    assert "k/n = 512/12,288 = 1/24 in the JSCC papers' convention" in report and "1/12 in real channel uses" in report
    assert "k/n = 2,048/12,288 = 1/6 in the JSCC papers' convention" in report  # the 16x16x16 latent
    for codec in codecs:
        assert f"| {NAMES[codec]} (payload) |" in report
    assert "| best codec |" in report


def test_channel_is_a_default_part_and_channel16_opt_in(tmp_path):
    from aelab.cli import build_parser
    from aelab.studies.dogs import DEFAULT_PARTS, PARTS

    assert "channel" in PARTS and "channel" in DEFAULT_PARTS and "channel16" not in DEFAULT_PARTS
    assert build_parser().parse_args(["dogs"]).parts == ",".join(DEFAULT_PARTS)
