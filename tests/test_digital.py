"""The digital baseline: capacity budget, codecs fitted to it, payload counting, the mean-colour fallback."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from aelab.digital import (
    bit_budget,
    decode,
    digital_psnr,
    encode,
    fit_quality,
    jpeg_payload,
    mean_colour,
    payload_bytes,
    webp_payload,
)
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
    for codec in ("jpeg", "webp"):
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
