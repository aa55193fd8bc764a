"""The digital baseline: capacity budget, codecs fitted to it, payload counting, the mean-colour fallback, the
codecs at capacity as the JSCC papers compare with (AVIF, JPEG 2000, HEIF) and the best codec's envelope."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from aelab import digital
from aelab.digital import (
    COUNTS,
    QUALITIES,
    bisect_qualities,
    bit_budget,
    choices,
    decode,
    digital_psnr,
    encode,
    envelope,
    fit_quality,
    jpeg2000_payload,
    jpeg_payload,
    mdat_payload,
    mean_colour,
    payload_bytes,
    unavailable,
    webp_payload,
)
from aelab.errors import UserError
from aelab.evaluate import psnr
from aelab.models.channel import snr_db

from conftest import DOGS_DIR


def _photo() -> np.ndarray:
    """A real 64x64 dog photo when the shared data is here, else a smooth textured picture."""
    files = sorted(DOGS_DIR.glob("*.jpg"))[:1] if DOGS_DIR.is_dir() else []
    if files:
        with Image.open(files[0]) as im:
            return np.asarray(im.convert("RGB").resize((64, 64)))
    y, x = np.mgrid[0:64, 0:64]
    rgb = np.stack([x * 4, y * 4, (x * y) % 256], -1) + np.random.default_rng(0).integers(0, 30, (64, 64, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def test_budget_is_n_times_half_log2_one_plus_snr():
    assert bit_budget(1024, 0.0) == pytest.approx(512.0)  # SNR 1: half a bit per real
    assert bit_budget(1024, 10 * math.log10(3)) == pytest.approx(1024.0)  # SNR 3: log2(4) / 2 = 1 bit
    assert bit_budget(1024, snr_db(0.05)) == pytest.approx(512 * math.log2(21))  # the lab's variance 0.05
    assert bit_budget(4096, 10.0) == pytest.approx(4 * bit_budget(1024, 10.0))


def test_fit_quality_takes_the_highest_quality_that_fits_even_when_sizes_are_not_monotone():
    assert fit_quality([10, 30, 20, 40], 8 * 25) == 2
    assert fit_quality([10, 30, 20, 40], 8 * 40) == 3
    assert fit_quality([10, 30], 79) is None


@pytest.mark.parametrize("codec", ["jpeg", "webp"])
def test_the_chosen_file_fits_the_budget_and_the_next_quality_does_not(codec):
    image = _photo()
    sizes = [len(encode(image, codec, q)) for q in range(101)]
    budget = bit_budget(1024, 25.0)  # 532 bytes
    q = fit_quality(sizes, budget)
    assert q is not None and sizes[q] * 8 <= budget
    assert all(s * 8 > budget for s in sizes[q + 1 :])
    assert decode(encode(image, codec, q)).shape == (64, 64, 3)


def test_payload_is_the_entropy_coded_part_only():
    image = _photo()
    jpg = encode(image, "jpeg", 50)
    n = jpeg_payload(jpg)
    assert 0 < n < len(jpg) - 300  # the JFIF header, quantisation and Huffman tables are hundreds of bytes
    assert jpg[-2:] == b"\xff\xd9" and payload_bytes(jpg, "jpeg") == n
    sos = jpg.find(b"\xff\xda")
    assert n == len(jpg) - 2 - (sos + 2 + int.from_bytes(jpg[sos + 2 : sos + 4], "big"))
    webp = encode(image, "webp", 50)
    assert webp[12:16] == b"VP8 "  # simple lossy WebP: RIFF header (12 bytes), one chunk (8-byte header)
    assert webp_payload(webp) == len(webp) - 20 - (len(webp) - 20) % 2
    with pytest.raises(ValueError):
        jpeg_payload(webp)
    with pytest.raises(ValueError):
        webp_payload(jpg)


def test_nothing_fits_a_tiny_budget_so_the_receiver_shows_the_mean_colour():
    image = _photo()
    flat = mean_colour(image)
    assert np.allclose(flat[10, 20], image.reshape(-1, 3).mean(0))
    expected = float(psnr(torch.tensor(flat / 255.0)[None], torch.tensor(image / 255.0)[None])[0])
    images = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].contiguous()
    out = digital_psnr(images, [0.0, 25.0], n_reals=4, qualities=range(0, 101, 25), progress=False)
    assert set(out) == set(digital.available_codecs()) >= {"jpeg", "webp"}
    for codec in out:
        for count in ("file", "payload"):
            assert out[codec][count]["fallback_share"] == [1.0, 1.0]
            assert out[codec][count]["psnr"] == pytest.approx([expected, expected], abs=1e-4)
            assert all(math.isnan(q) for q in out[codec][count]["mean_quality"])


def test_more_snr_buys_a_better_picture_and_payload_counting_never_loses():
    image = _photo()
    images = torch.from_numpy(np.stack([image, image[::-1].copy()])).permute(0, 3, 1, 2).contiguous()
    out = digital_psnr(images, [0.0, 10.0, 25.0, 40.0], 1024, qualities=range(0, 101, 10), progress=False)
    for codec in ("jpeg", "webp"):
        file, payload = out[codec]["file"], out[codec]["payload"]
        assert file["psnr"][-1] > file["psnr"][0] + 3  # from the flat image to a real picture
        assert file["fallback_share"][-1] == 0.0
        assert all(p >= f - 1e-9 for p, f in zip(payload["psnr"], file["psnr"]))
        assert all(p <= f for p, f in zip(payload["fallback_share"], file["fallback_share"]))


def _needs(codec: str):
    return pytest.mark.skipif(bool(unavailable(codec)), reason=unavailable(codec) or "available")


SLOW_CODECS = [pytest.param(c, marks=_needs(c)) for c in ("avif", "jpeg2000", "heif")]
LAB_SNRS = [3.0, snr_db(0.15), snr_db(0.1), snr_db(0.05), 25.0]


@pytest.mark.parametrize("codec", SLOW_CODECS)
def test_round_trips_fit_their_byte_budgets_file_and_payload(codec):
    """The quality chosen at each capacity budget fits it (whole file, and payload only), the next quality does
    not, and the file decodes to the photo's size and a picture close to it."""
    image = _photo()
    budgets = [bit_budget(1024, s) for s in LAB_SNRS]
    chosen, file = choices(image, codec, QUALITIES, budgets)
    size = {"file": len, "payload": lambda data: payload_bytes(data, codec)}
    for count in COUNTS:
        for q, bits in zip(chosen[count], budgets):
            if q is None:
                assert size[count](file(0)) * 8 > bits  # not even the lowest quality fits
                continue
            assert size[count](file(q)) * 8 <= bits, (count, q, bits)
            if q + 1 < len(QUALITIES):  # bisection saw the next quality overflow
                assert size[count](file(q + 1)) * 8 > bits, (count, q, bits)
            received = decode(file(q))
            assert received.shape == image.shape and received.dtype == np.uint8
            assert float(psnr(torch.tensor(received / 255.0)[None], torch.tensor(image / 255.0)[None])[0]) > 14
        assert chosen[count][-1] is not None  # at 25 dB (532 bytes) every one of these codecs fits a file
    for f, p in zip(chosen["file"], chosen["payload"]):  # counting only the payload never picks a lower quality
        assert p is not None and (f is None or p >= f)


@pytest.mark.parametrize("codec", [pytest.param("jpeg2000", marks=_needs("jpeg2000"))])
def test_bisection_finds_what_trying_every_quality_finds_where_size_grows_with_quality(codec):
    image = _photo()
    files = [encode(image, codec, q) for q in QUALITIES]
    budgets = [bit_budget(1024, s) for s in range(0, 26)]
    for size in (len, lambda d: payload_bytes(d, codec)):
        sizes = [size(f) for f in files]
        assert all(b >= a for a, b in zip(sizes, sizes[1:]))  # JPEG 2000's rate control: monotone
        exhaustive = [fit_quality(sizes, b) for b in budgets]
        asked: set[int] = set()
        found = bisect_qualities(lambda i, sizes=sizes, asked=asked: asked.add(i) or sizes[i], len(sizes), budgets)
        assert found == exhaustive
        assert len(asked) <= 0.6 * len(QUALITIES)  # the point of bisecting: fewer encodes


def test_bisection_on_made_up_sizes():
    sizes = [10, 20, 30, 40, 50]
    assert bisect_qualities(sizes.__getitem__, 5, [8 * 35, 8 * 5, 8 * 50, 8 * 10]) == [2, None, 4, 0]


@pytest.mark.parametrize("codec", [pytest.param(c, marks=_needs(c)) for c in ("avif", "heif")])
def test_avif_and_heif_payload_is_the_coded_image_in_the_mdat_box(codec):
    image = _photo()
    low, high = encode(image, codec, 20), encode(image, codec, 60)
    # what the mdat box holds besides the image: AV1's temporal delimiter (2 bytes) and sequence header
    # (11 bytes); HEVC's 4-byte NAL length field (its parameter sets live in the hvcC box)
    stream_headers = 13 if codec == "avif" else 4
    for data in (low, high):
        assert data[4:8] == b"ftyp"
        start = data.find(b"mdat") - 4  # the box's 4-byte size comes before its type
        assert mdat_payload(data) == int.from_bytes(data[start : start + 4], "big") - 8
        assert payload_bytes(data, codec) == mdat_payload(data) - stream_headers
        assert payload_bytes(data, codec) < len(data) - 200  # the container: 200+ bytes
    # the container does not grow with the quality: what grows is the payload
    assert abs((len(high) - payload_bytes(high, codec)) - (len(low) - payload_bytes(low, codec))) <= 8
    assert payload_bytes(high, codec) > payload_bytes(low, codec)
    with pytest.raises(ValueError):
        payload_bytes(encode(image, "jpeg", 50), codec)


@_needs("jpeg2000")
def test_jpeg2000_payload_leaves_out_the_main_and_tile_part_headers():
    image = _photo()
    data = encode(image, "jpeg2000", 60)
    assert data[:2] == b"\xff\x4f" and data[-2:] == b"\xff\xd9"  # a raw codestream: SOC ... EOC
    sod = data.find(b"\xff\x93")  # one tile: the data run from its SOD to the EOC
    assert jpeg2000_payload(data) == len(data) - (sod + 2) - 2
    assert payload_bytes(data, "jpeg2000") == jpeg2000_payload(data) < len(data) - 100  # SIZ, COD, QCD, COM
    assert digital.jpeg2000_ratio(100) == 1.0 and digital.jpeg2000_ratio(0) == 128.0
    with pytest.raises(ValueError):
        jpeg2000_payload(encode(image, "jpeg", 50))


def test_the_best_digital_envelope_is_the_maximum_of_the_codecs():
    best, by = envelope({"JPEG (file)": [1.0, 5.0, 2.0], "AVIF (payload)": [3.0, 4.0, 2.0]})
    assert best == [3.0, 5.0, 2.0] and by == ["AVIF (payload)", "JPEG (file)", "JPEG (file)"]  # a tie: the first
    image = _photo()
    images = torch.from_numpy(np.stack([image, image[:, ::-1].copy()])).permute(0, 3, 1, 2).contiguous()
    out = digital_psnr(images, [2.0, 10.0, 25.0], 1024, qualities=range(0, 101, 20), progress=False)
    curves = {(c, k): out[c][k]["psnr"] for c in out for k in COUNTS}
    best, by = envelope({f"{c} {k}": v for (c, k), v in curves.items()})
    for j in range(3):
        assert best[j] == max(v[j] for v in curves.values())
        assert any(best[j] == out[c]["payload"]["psnr"][j] for c in out)  # payload counting is the best case


def test_a_missing_codec_is_named_with_the_reason(monkeypatch):
    from PIL import features

    real = features.check
    monkeypatch.setattr(features, "check", lambda name: False if name == "avif" else real(name))
    why = unavailable("avif")
    assert "AVIF is not in this Pillow" in why and "PIL.features.check('avif') is False" in why
    assert "avif" not in digital.available_codecs() and "jpeg" in digital.available_codecs()
    with pytest.raises(UserError, match="AVIF is not in this Pillow"):
        encode(_photo(), "avif", 50)
    image = torch.from_numpy(_photo().copy()).permute(2, 0, 1)[None].contiguous()
    with pytest.raises(UserError, match="AVIF is not in this Pillow"):
        digital_psnr(image, [10.0], 1024, codecs=["jpeg", "avif"], progress=False)

    import importlib.util

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pillow_heif" else find(name, *a))
    assert "pip install 'aelab[heif]'" in unavailable("heif") and "heif" not in digital.available_codecs()
    with pytest.raises(UserError, match="unknown codec"):
        unavailable("bpg")
