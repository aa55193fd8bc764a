"""Photo folders: any tree of jpg/jpeg/png/webp/bmp files, decoded once into one uint8 array.

Every photo becomes RGB (grey, grey+alpha, palette, CMYK, 16-bit and float images included, alpha
composited on white, EXIF rotation applied), is centre-cropped to a square and resized to
``size x size`` with Pillow's antialiased Lanczos filter. Files that cannot be decoded (zero bytes,
truncated, not an image) are skipped and counted, never fatal, unless nothing usable is left.

The decoded array is cached in the aelab cache folder under a key made from the relative paths,
byte sizes and modification times of the files, so a second run on the same folder starts in
seconds and any change to the folder (a file added, replaced or touched) decodes afresh.

The held-out split is decided per file by a hash of its relative path: adding photos never moves an
existing photo between train and test.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from aelab.checkpoint import atomic_write
from aelab.data.base import ImageData
from aelab.data.download import cache_dir, download, safe_extract
from aelab.errors import UserError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
CACHE_VERSION = 1  # bump when decoding changes, so old caches are not reused

STANFORD_DOGS_URL = "http://vision.stanford.edu/aditya86/ImageNetDogs/images.tar"
# The SHA-256 of images.tar could not be established from here (no network, and no published
# SHA-256 was found), so the download is not hash-checked. Its size, 793,579,520 bytes, is stated
# independently by several public download scripts and is checked instead, which catches the usual
# failure (a truncated transfer). Put the digest here once it is known.
STANFORD_DOGS_SHA256: str | None = None
STANFORD_DOGS_BYTES: int | None = 793_579_520


def find_photos(folder: str | Path) -> list[str]:
    """Relative POSIX paths of every photo under ``folder``, sorted; hidden files and folders skipped."""
    folder = Path(folder)
    found = []
    seen: set[tuple[int, int]] = set()  # (device, inode) of every folder walked: symlink loops end here
    for root, dirs, files in os.walk(folder, followlinks=True):
        try:
            st = os.stat(root)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and name.lower().endswith(EXTENSIONS):
                found.append((Path(root) / name).relative_to(folder).as_posix())
    return sorted(found)


def _hash01(text: str, salt: str = "") -> float:
    """A stable number in [0, 1) from a string (the first 8 bytes of its SHA-256)."""
    digest = hashlib.sha256((salt + text).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def held_out_mask(names: Sequence[str], test_fraction: float = 0.1) -> np.ndarray:
    """Boolean mask: True for the files in the held-out split.

    A file is a test file when the hash of its relative path falls below ``test_fraction``; so the
    decision for one file never depends on the others, and adding files leaves it unchanged. Only
    for tiny folders, where the rule would leave one side empty, the files with the smallest hashes
    are moved so that both sides hold at least one image.
    """
    h = np.array([_hash01(n) for n in names], dtype=np.float64)
    mask = h < test_fraction
    if test_fraction > 0 and len(names) >= 2:
        order = np.argsort(h, kind="stable")
        if not mask.any():
            mask[order[0]] = True
        if mask.all():
            mask[order[-1]] = False
    return mask


def _to_rgb(img):
    """Any Pillow mode -> 8-bit RGB: high-bit-depth grey scaled (not clipped), alpha over white."""
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            a = a / 257.0
        elif mode == "I":
            a = a / 257.0 if a.max(initial=0) > 255 else a
        elif a.max(initial=0) <= 1.0:  # float images in [0, 1]
            a = a * 255.0
        grey = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "La", "RGBa", "PA") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "RGB":
        return img
    return img.convert("RGB")


def load_image(path: str | Path, size: int = 64) -> np.ndarray | None:
    """One photo as a ``(size, size, 3)`` uint8 array, or None when it cannot be decoded."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # EXIF and palette warnings from odd files
            with Image.open(path) as img:
                if img.format == "JPEG":
                    img.draft("RGB" if img.mode == "RGB" else None, (2 * size, 2 * size))  # fast DCT downscale
                img.load()  # raises on truncated data (Pillow does not load truncated images by default)
                img = ImageOps.exif_transpose(img)
                img = _to_rgb(img)
                w, h = img.size
                side = min(w, h)
                left, top = (w - side) // 2, (h - side) // 2
                if (w, h) != (size, size):
                    img = img.resize((size, size), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side))
                out = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, MemoryError):
        return None
    if out.shape != (size, size, 3):
        return None
    return out


def _decode(paths: Sequence[Path], size: int, workers: int, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """Decode in threads (Pillow drops the GIL while decoding and resizing); returns images and ok-mask."""
    images = np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    ok = np.zeros(len(paths), dtype=bool)

    def one(i: int) -> int:
        a = load_image(paths[i], size)
        if a is not None:
            images[i] = a
            ok[i] = True
        return i

    with (
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
        tqdm(total=len(paths), desc="decoding photos", unit="img", disable=not progress, leave=False) as bar,
    ):
        for _ in pool.map(one, range(len(paths))):
            bar.update(1)
    return images, ok


def cache_key(folder: Path, names: Iterable[str], size: int) -> str:
    """SHA-256 over the decoding settings and every file's relative path, byte size and mtime."""
    h = hashlib.sha256(f"aelab-photos v{CACHE_VERSION} size={size}\n".encode())
    for name in names:
        st = (folder / name).stat()
        h.update(f"{name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _cache_path(key: str) -> Path:
    return cache_dir() / "photos" / f"{key[:32]}.npz"


def _read_cache(path: Path, n: int, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            images, ok = z["images"], z["ok"]
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if images.shape != (n, size, size, 3) or images.dtype != np.uint8 or ok.shape != (n,):
        return None
    return images, ok.astype(bool)


def _write_cache(path: Path, images: np.ndarray, ok: np.ndarray) -> bool:
    buf = io.BytesIO()
    np.savez(buf, images=images, ok=ok)
    try:
        atomic_write(path, buf.getvalue())
    except OSError as e:  # a read-only or full cache must not stop a run
        print(f"aelab: could not write the photo cache {path} ({e})", file=sys.stderr)
        return False
    return True


@dataclass
class PhotoSet:
    """Decoded photos before the split: images (N, H, W, 3) and their relative paths."""

    images: np.ndarray
    names: list[str]
    skipped: list[str]
    cache_hit: bool


def decode_folder(
    folder: str | Path,
    size: int = 64,
    limit: int | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool = True,
) -> PhotoSet:
    """Find, decode (or fetch from the cache) and keep the readable photos of ``folder``."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"photo folder {folder} does not exist or is not a folder")
    names = find_photos(folder)
    if not names:
        raise UserError(f"{folder}: no photos found (looked recursively for {', '.join(EXTENSIONS)})")
    if limit is not None:
        if limit < 1:
            raise UserError(f"--limit must be >= 1, got {limit}")
        # A stable, breed-mixed subset: the files whose salted path hash is smallest.
        names = sorted(sorted(names, key=lambda n: _hash01(n, "limit:"))[:limit])
    key = cache_key(folder, names, size)
    path = _cache_path(key)
    cached = _read_cache(path, len(names), size) if use_cache and path.exists() else None
    if cached is not None:
        images, ok = cached
    else:
        workers = workers or min(8, os.cpu_count() or 1)
        images, ok = _decode([folder / n for n in names], size, workers, progress)
        if use_cache:
            _write_cache(path, images, ok)
    skipped = [n for n, good in zip(names, ok) if not good]
    if not ok.any():  # before the skip note, so the user reads one line, not two about the same files
        raise UserError(f"{folder}: none of the {len(names)} photo file(s) could be decoded")
    if skipped:
        shown = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        print(f"aelab: skipped {len(skipped)} unreadable photo(s) in {folder}: {shown}", file=sys.stderr)
    return PhotoSet(images[ok], [n for n, good in zip(names, ok) if good], skipped, cached is not None)


def load_photos(
    folder: str | Path,
    size: int = 64,
    test_fraction: float = 0.1,
    limit: int | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool = True,
) -> ImageData:
    """A photo folder as uint8 ``ImageData`` (N, 3, size, size), split by path hash into train/test.

    ``limit`` keeps a stable, mixed subset of that many files (for quick runs). ``info`` says how
    many files were skipped and whether the cache was used.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise UserError(f"test fraction must be in [0, 1), got {test_fraction}")
    photos = decode_folder(folder, size, limit, use_cache, workers, progress)
    test = held_out_mask(photos.names, test_fraction)
    chw = torch.from_numpy(photos.images).permute(0, 3, 1, 2).contiguous()
    mask = torch.from_numpy(test)
    return ImageData(
        train=chw[~mask],
        test=chw[mask],
        source=str(Path(folder).expanduser()),
        info={
            "skipped": len(photos.skipped),
            "skipped_files": photos.skipped[:20],
            "cache": "hit" if photos.cache_hit else "miss",
            "image_size": size,
            "test_rule": f"sha256(relative path) < {test_fraction:g}",
        },
    )


def stanford_dogs_dir(root: str | Path | None = None) -> Path | None:
    """The extracted Stanford Dogs ``Images/`` folder in ``root`` (default: the cache), if complete."""
    root = Path(root) if root is not None else cache_dir() / "stanford-dogs"
    images = root / "Images"
    return images if (root / ".complete").is_file() and images.is_dir() else None


def download_stanford_dogs(
    to: str | Path | None = None,
    url: str | None = None,
    sha256: str | None = None,
    expected_bytes: int | None = None,
    timeout: float = 60.0,
) -> Path:
    """Fetch and safely extract the Stanford Dogs images (resumable); returns the ``Images`` folder.

    Without ``url`` it is the official archive with its known checksum and size (read when called,
    so tests can point them at a local server). The archive is kept as ``images.tar.part`` while
    incomplete (a rerun resumes it) and removed after a verified extraction, which is marked by a
    ``.complete`` file.
    """
    if url is None:
        url, sha256, expected_bytes = STANFORD_DOGS_URL, STANFORD_DOGS_SHA256, STANFORD_DOGS_BYTES
    root = Path(to).expanduser() if to is not None else cache_dir() / "stanford-dogs"
    done = stanford_dogs_dir(root)
    if done is not None:
        return done
    archive = download([url], root / "images.tar", sha256, timeout=timeout)
    if expected_bytes is not None and (got := archive.stat().st_size) != expected_bytes:
        archive.unlink(missing_ok=True)
        raise UserError(f"{url}: downloaded {got:,} bytes, expected {expected_bytes:,}; run the command again")
    names = safe_extract(archive, root)
    images = root / "Images"
    if not images.is_dir():
        raise UserError(f"{archive}: no Images/ folder inside (got {', '.join(sorted(names)[:3])} ...)")
    atomic_write(root / ".complete", json.dumps({"url": url, "files": len(names), "sha256": sha256}) + "\n")
    archive.unlink(missing_ok=True)
    return images
