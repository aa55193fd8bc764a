"""The classical design the noisy-latent autoencoder competes with: compress the image, then send bits.

The channel carries ``n`` real numbers per image (as many as the autoencoder's latent). Over an AWGN
channel of a given SNR, Shannon's capacity is 0.5 log2(1 + SNR) bits per real, so an ideal channel code
delivers at most ``n * 0.5 * log2(1 + SNR)`` bits, error free. The digital pipeline gets exactly that
budget: the image is encoded with JPEG or WebP at the highest quality whose size fits, and received
perfectly. This is generous to the digital side (no real channel code reaches capacity at 64x64-image
block lengths) and it models the cliff: below the SNR where the smallest file fits, nothing arrives,
and the receiver can only show a flat image of the photo's mean colour (3 numbers, granted for free).

Bytes are counted two ways:

``file``     the whole file as Pillow writes it (JPEG with optimised Huffman tables, WebP lossy).
``payload``  the entropy-coded data only, as if the receiver already knew every header and table: the
             digital baseline's best case. For JPEG that is the scan data between the end of the SOS
             (start-of-scan) header and the EOI marker; Pillow's non-progressive output has one scan,
             so this excludes the JFIF header, quantisation and (optimised, per-image) Huffman tables,
             which can be most of a tiny file. For WebP it is the payload of the ``VP8 `` (or ``VP8L``)
             chunk: the RIFF/WebP container and chunk headers (20 bytes) are left out; the VP8 frame
             header (10 bytes) inside the chunk stays, since it carries per-image data.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from aelab.errors import UserError
from aelab.evaluate import psnr

CODECS = ("jpeg", "webp")
COUNTS = ("file", "payload")
QUALITIES = tuple(range(0, 101))
PSNR_CAP = 100.0  # as evaluate.mean_psnr


def bit_budget(n_reals: int, snr: float) -> float:
    """Bits an ideal code delivers through ``n_reals`` uses of an AWGN channel at ``snr`` dB."""
    return n_reals * 0.5 * math.log2(1.0 + 10.0 ** (snr / 10.0))


def encode(image: np.ndarray, codec: str, quality: int) -> bytes:
    """``image``: uint8 HxWx3. JPEG with optimised Huffman tables (Pillow's default 4:2:0 chroma)."""
    buf = io.BytesIO()
    im = Image.fromarray(image)
    if codec == "jpeg":
        im.save(buf, "JPEG", quality=int(quality), optimize=True)
    elif codec == "webp":
        im.save(buf, "WEBP", quality=int(quality))
    else:
        raise UserError(f"unknown codec {codec!r}; choose from {', '.join(CODECS)}")
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def jpeg_payload(data: bytes) -> int:
    """Bytes of entropy-coded scan data: from the end of the first SOS header to the EOI marker."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"JPEG marker expected at byte {pos}")
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker == 0xDA:  # SOS: its header is `length` bytes, then the scan data
            start = pos + 2 + length
            end = data.rfind(b"\xff\xd9")
            if end < start:
                raise ValueError("JPEG without EOI")
            return end - start
        pos += 2 + length
    raise ValueError("JPEG without a scan")


def webp_payload(data: bytes) -> int:
    """Bytes of the VP8/VP8L chunk's payload, without the RIFF container and chunk headers."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP file")
    pos = 12
    while pos + 8 <= len(data):
        tag = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if tag in (b"VP8 ", b"VP8L"):
            return size
        pos += 8 + size + (size & 1)
    raise ValueError("WebP without an image chunk")


def payload_bytes(data: bytes, codec: str) -> int:
    return jpeg_payload(data) if codec == "jpeg" else webp_payload(data)


def mean_colour(image: np.ndarray) -> np.ndarray:
    """What the receiver shows when no file fits: the photo's per-channel mean colour, everywhere."""
    return np.broadcast_to(image.reshape(-1, 3).mean(axis=0), image.shape)


def _psnr(received: np.ndarray, image: np.ndarray) -> float:
    a = torch.from_numpy(np.ascontiguousarray(received, dtype=np.float32) / 255.0)[None]
    b = torch.from_numpy(image.astype(np.float32) / 255.0)[None]
    return float(psnr(a, b).clamp(max=PSNR_CAP)[0])


def fit_quality(sizes: Sequence[int], budget_bits: float) -> int | None:
    """Index of the highest quality whose size (bytes) fits ``budget_bits``; None when none fits.

    Every quality's size is known (a 64x64 image encodes in about a millisecond), so this is the exact
    answer of a binary search over quality, and it stays exact where size is not monotone in quality.
    """
    fits = np.flatnonzero(np.asarray(sizes) * 8 <= budget_bits)
    return int(fits[-1]) if len(fits) else None


def digital_psnr(
    images: torch.Tensor,
    snrs: Sequence[float],
    n_reals: int,
    codecs: Sequence[str] = CODECS,
    qualities: Sequence[int] = QUALITIES,
    progress: bool = True,
) -> dict[str, dict[str, dict[str, list[float]]]]:
    """PSNR of the digital pipeline for uint8 ``images`` (N x 3 x H x W) at every SNR.

    Returns ``{codec: {count: {"psnr": [...], "fallback_share": [...], "mean_quality": [...]}}}``,
    one value per SNR: the mean per-image PSNR on [0, 1], the share of images that got the mean-colour
    fallback, and the mean chosen quality among those that fitted (NaN when none did).
    """
    budgets = [bit_budget(n_reals, s) for s in snrs]
    arr = images.permute(0, 2, 3, 1).contiguous().numpy()
    shape = (len(arr), len(budgets))
    per = {c: {k: (np.zeros(shape), np.full(shape, np.nan)) for k in COUNTS} for c in codecs}
    for i, image in enumerate(tqdm(arr, desc="digital baseline", unit="image", disable=None if progress else True)):
        flat = _psnr(mean_colour(image), image)
        for codec in codecs:
            files = [encode(image, codec, q) for q in qualities]
            sizes = {"file": [len(f) for f in files], "payload": [payload_bytes(f, codec) for f in files]}
            scores: dict[int, float] = {}
            for count in COUNTS:
                values, chosen = per[codec][count]
                for j, bits in enumerate(budgets):
                    q = fit_quality(sizes[count], bits)
                    if q is None:
                        values[i, j] = flat
                        continue
                    if q not in scores:
                        scores[q] = _psnr(decode(files[q]), image)
                    values[i, j] = scores[q]
                    chosen[i, j] = qualities[q]
    out: dict[str, dict[str, dict[str, list[float]]]] = {}
    for codec in codecs:
        for count in COUNTS:
            values, chosen = per[codec][count]
            fitted = ~np.isnan(chosen)
            with np.errstate(invalid="ignore"):
                quality = np.where(fitted.any(0), np.nansum(chosen, 0) / np.maximum(fitted.sum(0), 1), np.nan)
            out.setdefault(codec, {})[count] = {
                "psnr": values.mean(0).tolist(),
                "fallback_share": (1.0 - fitted.mean(0)).tolist(),
                "mean_quality": quality.tolist(),
            }
    return out
