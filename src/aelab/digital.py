"""The classical design the noisy-latent autoencoder competes with: compress the image, then send bits.

The channel carries ``n`` real numbers per image (as many as the autoencoder's latent), that is ``n / 2``
complex channel uses. Over an AWGN channel of a given SNR, Shannon's capacity is 0.5 log2(1 + SNR) bits
per real (log2(1 + SNR) per complex use), so an ideal channel code delivers at most
``n * 0.5 * log2(1 + SNR)`` bits, error free. The digital pipeline gets exactly that budget: the image is
encoded at the highest quality whose size fits, and received perfectly. This is generous to the digital
side (no real channel code reaches capacity at 64x64-image block lengths) and it models the cliff: below
the SNR where the smallest file fits, nothing arrives, and the receiver can only show a flat image of the
photo's mean colour (3 numbers, granted for free).

The codecs, each through Pillow at its defaults unless said otherwise (``CODECS``; :func:`unavailable`
says why one cannot run here):

``jpeg``      JPEG with optimised Huffman tables, 4:2:0 chroma.
``webp``      WebP lossy (VP8).
``avif``      AVIF (AV1 intra, the successor of HEVC intra), Pillow's AVIF plugin (Pillow >= 11.3 with
              libavif): speed 6, 4:2:0 chroma, one encoder thread (so files are the same bits on any machine).
``jpeg2000``  JPEG 2000 through OpenJPEG as a raw codestream (``.j2k``; a JP2 file would add its box
              wrapper), the irreversible 9/7 wavelet with the colour transform (Pillow's defaults are the
              lossless 5/3 wavelet without it, 1-2 dB worse here). It has no 0-100 quality: quality ``q``
              asks OpenJPEG's rate control for a compression ratio of ``2 ** (7 * (100 - q) / 100)``
              (128:1 at 0, 1:1 at 100, about 5% more bytes per step).
``heif``      HEVC intra in a HEIF file (the codec inside BPG, which the JSCC papers compare with), through
              the optional ``pillow-heif`` (``pip install 'aelab[heif]'``): libheif's x265 defaults, 4:2:0.

Bytes are counted two ways:

``file``     the whole file as written above.
``payload``  the entropy-coded data only, as if the receiver already knew every header and table: the
             digital baseline's best case. For JPEG that is the scan data between the end of the SOS
             (start-of-scan) header and the EOI marker; Pillow's non-progressive output has one scan,
             so this excludes the JFIF header, quantisation and (optimised, per-image) Huffman tables,
             which can be most of a tiny file. For WebP it is the payload of the ``VP8 `` (or ``VP8L``)
             chunk: the RIFF/WebP container and chunk headers (20 bytes) are left out; the VP8 frame
             header (10 bytes) inside the chunk stays, since it carries per-image data. For AVIF it is the
             AV1 frame OBU (frame header and tiles) in the ``mdat`` box; for HEIF the HEVC slice NAL units
             there: the ISOBMFF boxes (about 270 bytes for AVIF, 370 for HEIF, with the decoder
             configuration), the AV1 temporal delimiter and sequence header (13 bytes) and the NAL length
             fields (4 bytes) are left out, as the stream-level headers (HEVC's VPS/SPS/PPS are in the
             boxes). For JPEG 2000 it is the data after each tile-part's SOD marker (packet headers and
             code-block data): the main header (SIZ, COD, QCD, OpenJPEG's comment) and the tile-part
             headers are left out.

The search: for JPEG and WebP (about a millisecond per encode) every quality is encoded and the highest
one that fits is taken, exactly, even where size is not monotone in quality. AVIF, JPEG 2000 and HEIF
encode 5-60 times slower, so for them the highest quality that fits is found by bisection over the same
qualities (HEIF: the even ones, see :func:`qualities_for`), which takes about 30-40 encodes per photo for
the 29 budgets of the ``channel`` part: exact wherever the size grows with the quality. JPEG 2000 and HEIF
sizes did on every held-out dog photo measured (20 and 10 photos, file and payload); AVIF's dip by a few bytes
between some neighbouring qualities, where bisection can stop one step early: on 20 photos it chose another
quality than trying every one for 1 of 1,160 photo-budget pairs.
"""

from __future__ import annotations

import importlib.util
import io
import math
import struct
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from aelab.errors import UserError
from aelab.evaluate import PSNR_CAP, psnr

CODECS = ("jpeg", "webp", "avif", "jpeg2000", "heif")  # every codec this module knows, in figure order
NAMES = {"jpeg": "JPEG", "webp": "WebP", "avif": "AVIF", "jpeg2000": "JPEG 2000", "heif": "HEIF"}
BISECTED = ("avif", "jpeg2000", "heif")  # slow encoders: the highest quality that fits is found by bisection
COUNTS = ("file", "payload")
QUALITIES = tuple(range(0, 101))
_PIL_FEATURE = {"jpeg": "jpg", "webp": "webp", "avif": "avif", "jpeg2000": "jpg_2000"}
_HOW_TO_GET = {
    "jpeg": "a Pillow built with libjpeg",
    "webp": "a Pillow built with libwebp",
    "avif": "Pillow >= 11.3 as published on PyPI (its wheels include libavif), or a Pillow built with libavif",
    "jpeg2000": "Pillow as published on PyPI (its wheels include OpenJPEG), or a Pillow built with OpenJPEG",
}


def unavailable(codec: str) -> str:
    """Why ``codec`` cannot run here, in words; ``""`` when it can."""
    if codec not in CODECS:
        raise UserError(f"unknown codec {codec!r}; choose from {', '.join(CODECS)}")
    if codec == "heif":
        if importlib.util.find_spec("pillow_heif") is None:
            return "HEIF (HEVC intra) needs pillow-heif, which is not installed (pip install 'aelab[heif]')"
        return ""
    from PIL import __version__, features

    with warnings.catch_warnings():  # an older Pillow warns "Unknown feature 'avif'" and answers False
        warnings.simplefilter("ignore")
        here = features.check(_PIL_FEATURE[codec])
    if here:
        return ""
    return (
        f"{NAMES[codec]} is not in this Pillow {__version__} (PIL.features.check({_PIL_FEATURE[codec]!r}) is "
        f"False); it needs {_HOW_TO_GET[codec]}"
    )


def available_codecs(codecs: Sequence[str] = CODECS) -> tuple[str, ...]:
    """The codecs of ``codecs`` that can run here, in order."""
    return tuple(c for c in codecs if not unavailable(c))


def bit_budget(n_reals: int, snr: float) -> float:
    """Bits an ideal code delivers through ``n_reals`` uses of an AWGN channel at ``snr`` dB."""
    return n_reals * 0.5 * math.log2(1.0 + 10.0 ** (snr / 10.0))


def jpeg2000_ratio(quality: int) -> float:
    """The compression ratio JPEG 2000's quality ``quality`` (0-100) asks OpenJPEG's rate control for."""
    return 2.0 ** (7.0 * (100 - quality) / 100.0)


def encode(image: np.ndarray, codec: str, quality: int) -> bytes:
    """``image``: uint8 HxWx3, encoded as described in the module's docstring."""
    if codec not in CODECS:
        raise UserError(f"unknown codec {codec!r}; choose from {', '.join(CODECS)}")
    buf = io.BytesIO()
    im = Image.fromarray(image)
    q = int(quality)
    if codec == "jpeg":
        im.save(buf, "JPEG", quality=q, optimize=True)
    elif codec == "webp":
        im.save(buf, "WEBP", quality=q)
    elif codec == "heif":
        if why := unavailable(codec):
            raise UserError(why)
        import pillow_heif

        pillow_heif.from_pillow(im).save(buf, quality=q)
    else:
        if why := unavailable(codec):
            raise UserError(why)
        if codec == "avif":
            im.save(buf, "AVIF", quality=q, max_threads=1)
        else:
            options = {"quality_mode": "rates", "quality_layers": [jpeg2000_ratio(q)], "irreversible": True}
            im.save(buf, "JPEG2000", **options, mct=1, no_jp2=True)
    return buf.getvalue()


def _is_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc")


def decode(data: bytes) -> np.ndarray:
    """Any file :func:`encode` writes, back to uint8 HxWx3."""
    if _is_heif(data):
        import pillow_heif

        return np.asarray(
            pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)[0].to_pillow().convert("RGB")
        )
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


def mdat_boxes(data: bytes) -> list[bytes]:
    """The contents of the ``mdat`` box(es) of an ISOBMFF file (AVIF, HEIF): the coded image, no container."""
    if data[4:8] != b"ftyp":
        raise ValueError("not an ISOBMFF (AVIF/HEIF) file")
    pos, found = 0, []
    while pos + 8 <= len(data):
        size, tag = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:  # a 64-bit size follows the type
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
            header = 16
        elif size == 0:  # the box runs to the end of the file
            size = len(data) - pos
        if size < header:
            raise ValueError(f"ISOBMFF box of {size} bytes at byte {pos}")
        if tag == b"mdat":
            found.append(data[pos + header : pos + size])
        pos += size
    if not found:
        raise ValueError("ISOBMFF file without an mdat box")
    return found


def mdat_payload(data: bytes) -> int:
    """Bytes inside the ``mdat`` box(es) of an ISOBMFF file."""
    return sum(len(b) for b in mdat_boxes(data))


AV1_STREAM_OBUS = (1, 2, 5, 15)  # sequence header, temporal delimiter, metadata, padding: no image data


def avif_payload(data: bytes) -> int:
    """Bytes of the AV1 frame OBUs (frame header and tiles) in an AVIF file's ``mdat``: the temporal delimiter
    and the sequence header that the item data also holds (13 bytes) are stream-level headers, left out."""
    total = 0
    for box in mdat_boxes(data):
        pos = 0
        while pos < len(box):
            start, header = pos, box[pos]
            if not header & 0x02:
                raise ValueError("AV1 OBU without a size field")
            kind = (header >> 3) & 0x0F
            pos += 2 if header & 0x04 else 1  # the extension byte
            size = shift = 0
            while True:  # leb128
                if pos >= len(box):
                    raise ValueError("truncated AV1 OBU")
                b = box[pos]
                pos, size, shift = pos + 1, size | (b & 0x7F) << shift, shift + 7
                if not b & 0x80:
                    break
            pos += size
            if pos > len(box):
                raise ValueError("truncated AV1 OBU")
            if kind not in AV1_STREAM_OBUS:
                total += pos - start
    return total


def heif_payload(data: bytes) -> int:
    """Bytes of the HEVC slice NAL units in a HEIF file's ``mdat``, without their 4-byte length fields (the
    parameter sets live in the ``hvcC`` box, with the container)."""
    total = 0
    for box in mdat_boxes(data):
        pos = 0
        while pos + 4 <= len(box):
            (size,) = struct.unpack(">I", box[pos : pos + 4])
            if size < 2 or pos + 4 + size > len(box):
                raise ValueError("truncated HEVC NAL unit")
            if (box[pos + 4] >> 1) & 0x3F < 32:  # VCL NAL units (slices); not parameter sets or SEI
                total += size
            pos += 4 + size
    return total


def jpeg2000_payload(data: bytes) -> int:
    """Bytes after each tile-part's SOD marker in a JPEG 2000 codestream: no main or tile-part headers."""
    if data[:2] != b"\xff\x4f":
        raise ValueError("not a JPEG 2000 codestream (no SOC marker)")
    pos, total, tiles = 2, 0, 0
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"JPEG 2000 marker expected at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xD9:  # EOC
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker != 0x90:  # a main-header marker segment
            pos += 2 + length
            continue
        (psot,) = struct.unpack(">I", data[pos + 6 : pos + 10])  # SOT: the tile-part's length from its SOT on
        end = pos + psot if psot else len(data) - 2
        p = pos + 2 + length
        while p + 2 <= end and data[p + 1] != 0x93:  # tile-part header segments up to SOD
            (seg,) = struct.unpack(">H", data[p + 2 : p + 4])
            p += 2 + seg
        if p + 2 > end:
            raise ValueError("JPEG 2000 tile-part without SOD")
        total, tiles, pos = total + end - (p + 2), tiles + 1, end
    if not tiles:
        raise ValueError("JPEG 2000 codestream without a tile-part")
    return total


_PAYLOAD: dict[str, Callable[[bytes], int]] = {
    "jpeg": jpeg_payload,
    "webp": webp_payload,
    "avif": avif_payload,
    "heif": heif_payload,
    "jpeg2000": jpeg2000_payload,
}


def payload_bytes(data: bytes, codec: str) -> int:
    return _PAYLOAD[codec](data)


def mean_colour(image: np.ndarray) -> np.ndarray:
    """What the receiver shows when no file fits: the photo's per-channel mean colour, everywhere."""
    return np.broadcast_to(image.reshape(-1, 3).mean(axis=0), image.shape)


def _psnr(received: np.ndarray, image: np.ndarray) -> float:
    a = torch.from_numpy(np.ascontiguousarray(received, dtype=np.float32) / 255.0)[None]
    b = torch.from_numpy(image.astype(np.float32) / 255.0)[None]
    return float(psnr(a, b, cap=PSNR_CAP)[0])


def fit_quality(sizes: Sequence[int], budget_bits: float) -> int | None:
    """Index of the highest quality whose size (bytes) fits ``budget_bits``; None when none fits.

    Every quality's size is known (a 64x64 image encodes in about a millisecond), so this is the exact
    answer of a binary search over quality, and it stays exact where size is not monotone in quality.
    """
    fits = np.flatnonzero(np.asarray(sizes) * 8 <= budget_bits)
    return int(fits[-1]) if len(fits) else None


def bisect_qualities(size_at: Callable[[int], int], n: int, budgets_bits: Sequence[float]) -> list[int | None]:
    """For each budget (bits), the index of the highest of ``n`` qualities whose size (bytes) fits, or None, by
    bisection assuming size grows with the index. Every budget bisects the same range, so the budgets share
    most of their probes: ``size_at`` is asked for about 30-40 distinct indices for 29 budgets of 101
    qualities (the callers cache it; starting each search from the last budget's answer asks for more)."""
    answers: list[int | None] = []
    for bits in budgets_bits:
        lo, hi = -1, n - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if size_at(mid) * 8 <= bits:
                lo = mid
            else:
                hi = mid - 1
        answers.append(lo if lo >= 0 else None)
    return answers


def qualities_for(codec: str, qualities: Sequence[int]) -> list[int]:
    """The qualities searched for ``codec``: HEIF's x265 quantiser moves every other quality point (1 and 2,
    3 and 4, ... give the same file), so only its even qualities are encoded."""
    return [q for q in qualities if q % 2 == 0] if codec == "heif" else list(qualities)


def choices(
    image: np.ndarray, codec: str, qualities: Sequence[int], budgets: Sequence[float]
) -> tuple[dict[str, list[int | None]], Callable[[int], bytes]]:
    """Per byte count (``COUNTS``), the index into ``qualities`` of the quality chosen at each budget (bits;
    None when nothing fits), and a function from such an index to its file (each encoded at most once)."""
    files: dict[int, bytes] = {}

    def file(i: int) -> bytes:
        if i not in files:
            files[i] = encode(image, codec, qualities[i])
        return files[i]

    if codec not in BISECTED:
        all_files = [file(i) for i in range(len(qualities))]
        sizes = {"file": [len(f) for f in all_files], "payload": [payload_bytes(f, codec) for f in all_files]}
        return {c: [fit_quality(sizes[c], b) for b in budgets] for c in COUNTS}, file
    size = {"file": len, "payload": lambda f: payload_bytes(f, codec)}
    return {c: bisect_qualities(lambda i, c=c: size[c](file(i)), len(qualities), budgets) for c in COUNTS}, file


def digital_psnr(
    images: torch.Tensor,
    snrs: Sequence[float],
    n_reals: int,
    codecs: Sequence[str] | None = None,
    qualities: Sequence[int] = QUALITIES,
    progress: bool = True,
) -> dict[str, dict[str, dict[str, list[float]]]]:
    """PSNR of the digital pipeline for uint8 ``images`` (N x 3 x H x W) at every SNR.

    ``codecs``: default every codec that can run here (:func:`available_codecs`); asking for one that
    cannot is a :class:`UserError` that says why. Returns ``{codec: {count: {"psnr": [...],
    "fallback_share": [...], "mean_quality": [...]}}}``, one value per SNR: the mean per-image PSNR on
    [0, 1], the share of images that got the mean-colour fallback, and the mean chosen quality among those
    that fitted (NaN when none did).
    """
    codecs = available_codecs() if codecs is None else tuple(codecs)
    for codec in codecs:
        if why := unavailable(codec):
            raise UserError(why)
    budgets = [bit_budget(n_reals, s) for s in snrs]
    arr = images.permute(0, 2, 3, 1).contiguous().numpy()
    shape = (len(arr), len(budgets))
    per = {c: {k: (np.zeros(shape), np.full(shape, np.nan)) for k in COUNTS} for c in codecs}
    for i, image in enumerate(tqdm(arr, desc="digital baseline", unit="image", disable=None if progress else True)):
        flat = _psnr(mean_colour(image), image)
        for codec in codecs:
            grid = qualities_for(codec, qualities)
            chosen_at, file = choices(image, codec, grid, budgets)
            scores: dict[int, float] = {}
            for count in COUNTS:
                values, chosen = per[codec][count]
                for j, q in enumerate(chosen_at[count]):
                    if q is None:
                        values[i, j] = flat
                        continue
                    if q not in scores:
                        scores[q] = _psnr(decode(file(q)), image)
                    values[i, j] = scores[q]
                    chosen[i, j] = grid[q]
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


def envelope(curves: Mapping[str, Sequence[float]]) -> tuple[list[float], list[str]]:
    """The best digital curve: at each point the highest PSNR of any curve, and which curve gave it (the
    first in order on a tie)."""
    if not curves:
        raise ValueError("no digital curve to take the envelope of")
    labels = list(curves)
    values = np.asarray([curves[k] for k in labels], dtype=np.float64)
    best = values.argmax(axis=0)
    return values.max(axis=0).tolist(), [labels[b] for b in best]
