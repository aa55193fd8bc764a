"""Photo folders: any tree of jpg/jpeg/png/webp/bmp files, decoded once into one uint8 file on disk.

Every photo becomes RGB (grey, grey+alpha, palette, CMYK, 16-bit and float images included, alpha
composited on white, EXIF rotation applied), is centre-cropped to a square and resized to
``size x size`` with Pillow's antialiased Lanczos filter. Files that cannot be decoded (zero bytes,
truncated, not an image) are skipped and counted, never fatal, unless nothing usable is left.

The decoded photos are written, block by block as they are decoded, to a ``.npy`` file in the aelab
cache folder under a key made from the relative paths, byte sizes and modification times of the
files, so a second run on the same folder starts in seconds and any change to the folder (a file
added, replaced or touched) decodes afresh. Training reads that file memory-mapped: the process
holds a few blocks of photos while decoding and none of its own afterwards (the kernel's page cache
holds what was read, and gives it back under memory pressure), so a folder larger than the RAM
trains. Peak memory for 100k photos is in benchmarks/RESULTS.md.

The held-out split is decided per file by a hash of its relative path: adding photos never moves an
existing photo between train and test.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from tqdm import tqdm

from aelab.checkpoint import atomic_write, file_mode
from aelab.data.base import ImageData
from aelab.data.download import cache_dir, download, safe_extract
from aelab.errors import UserError, WriteFailed
from aelab.faults import write_failure

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
CACHE_VERSION = 2  # bump when decoding or the cache layout changes, so old caches are not reused
DECODE_CHUNK = 256  # photos per block written to the cache (memory while decoding: about two blocks)
MEMORY_FALLBACK_FRACTION = 0.25  # of RAM: a folder up to this size is decoded into memory when the cache fails

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


class _Sink:
    """Where decoded photos go, in order: a file on disk (the cache) or an array in memory."""

    def __init__(self, n: int, size: int, file: BinaryIO | None) -> None:
        self.file = file
        self.memory = None if file is not None else np.zeros((n, 3, size, size), dtype=np.uint8)
        self.count = 0

    def add(self, block: np.ndarray) -> None:
        if self.file is not None:
            self.file.write(memoryview(np.ascontiguousarray(block)).cast("B"))
        else:
            assert self.memory is not None
            self.memory[self.count : self.count + len(block)] = block
        self.count += len(block)


def _decode_into(sink: _Sink, paths: Sequence[str], size: int, workers: int, progress: bool) -> np.ndarray:
    """Decode ``paths`` in order in threads (Pillow drops the GIL while decoding) and hand the readable
    ones to ``sink`` as (k, 3, size, size) blocks, in order; returns the ok-mask.

    At most ``2 * DECODE_CHUNK`` photos are in flight or waiting to be written, so memory stays bounded
    however large the folder.
    """
    ok = np.zeros(len(paths), dtype=bool)
    pending: deque[Future] = deque()
    block: list[np.ndarray] = []
    submitted = 0
    with (
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
        tqdm(total=len(paths), desc="decoding photos", unit="img", disable=not progress, leave=False) as bar,
    ):
        for i in range(len(paths)):
            while submitted < len(paths) and len(pending) < 2 * DECODE_CHUNK:
                pending.append(pool.submit(load_image, paths[submitted], size))
                submitted += 1
            a = pending.popleft().result()
            if a is not None:
                ok[i] = True
                block.append(a.transpose(2, 0, 1))
            if len(block) == DECODE_CHUNK or (i + 1 == len(paths) and block):
                sink.add(np.stack(block))
                block = []
            bar.update(1)
    return ok


def cache_key(folder: Path, names: Iterable[str], size: int, test_fraction: float = 0.1) -> str:
    """SHA-256 over the decoding settings and every file's relative path, byte size and mtime.

    The test fraction is part of it because the cache stores the photos in split order (see PhotoSet).
    """
    h = hashlib.sha256(f"aelab-photos v{CACHE_VERSION} size={size} test={test_fraction!r}\n".encode())
    for name in names:
        st = (folder / name).stat()
        h.update(f"{name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _cache_paths(key: str) -> tuple[Path, Path]:
    """The images (``.npy``, memory-mapped when read) and the index (``.json``: which files were skipped)."""
    base = cache_dir() / "photos" / key[:32]
    return base.with_suffix(".npy"), base.with_suffix(".json")


def _read_cache(key: str, n: int, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached (n, 3, size, size) images, memory-mapped, and the ok-mask; None when absent or damaged.

    The index is written last, so a cache without one (a decode that was stopped) is a miss too.
    """
    npy, index = _cache_paths(key)
    try:
        meta = json.loads(index.read_text())
        skipped = [int(i) for i in meta["skipped"]]
        if meta["version"] != CACHE_VERSION or meta["n"] != n or meta["size"] != size:
            return None
        images = np.load(npy, mmap_mode="c", allow_pickle=False)  # copy-on-write: writable, never written back
    except (OSError, ValueError, KeyError, TypeError, EOFError, AttributeError):
        return None
    ok = np.ones(n, dtype=bool)
    if any(not 0 <= i < n for i in skipped):
        return None
    ok[skipped] = False
    if images.shape != (n, 3, size, size) or images.dtype != np.uint8:
        return None
    return images, ok


def _stale_temps(folder: Path, stem: str) -> Iterator[Path]:
    """Temporary cache files of ``stem`` whose writer (pid in the name) no longer runs here."""
    for tmp in folder.glob(f".{stem}.npy.*.tmp"):
        try:
            pid = int(tmp.name.split(".")[-2])
            os.kill(pid, 0)
        except ProcessLookupError:
            yield tmp
        except (ValueError, PermissionError):
            continue


def _decode_to_cache(key: str, paths: Sequence[str], size: int, workers: int, progress: bool) -> np.ndarray:
    """Decode straight into the cache file (``.npy``, renamed into place when complete); returns the ok-mask.

    Only one block of photos is in memory at a time. A failed write removes the temporary file and
    raises :class:`~aelab.errors.WriteFailed` naming it.
    """
    npy, index = _cache_paths(key)
    n = len(paths)
    tmp = npy.with_name(f".{npy.stem}.npy.{os.getpid()}.tmp")
    try:
        npy.parent.mkdir(parents=True, exist_ok=True)
        for stale in _stale_temps(npy.parent, npy.stem):  # left by a decode that was killed
            stale.unlink(missing_ok=True)
        with open(tmp, "wb") as f:
            os.fchmod(f.fileno(), file_mode())
            np.lib.format.write_array_header_1_0(
                f,
                {
                    "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                    "fortran_order": False,
                    "shape": (n, 3, size, size),
                },
            )
            start = f.tell()
            sink = _Sink(n, size, f)
            ok = _decode_into(sink, paths, size, workers, progress)
            f.truncate(start + n * 3 * size * size)  # rows of skipped files: zeros at the end, never read
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, npy)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise write_failure(e, npy, existed=False) from None  # the cache file's name, not its temporary's
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    skipped = np.flatnonzero(~ok).tolist()
    atomic_write(index, json.dumps({"version": CACHE_VERSION, "n": n, "size": size, "skipped": skipped}) + "\n")
    return ok


def _memory_fallback_bytes() -> int:
    """The largest decoded folder kept in memory when the cache cannot be written: a share of the RAM."""
    try:
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        ram = 8 << 30
    return int(ram * MEMORY_FALLBACK_FRACTION)


@dataclass
class PhotoSet:
    """Decoded photos before the split: ``chw`` (N, 3, H, W) uint8 and their relative paths ``names``.

    Rows are in split order: the ``n_train`` training photos first, then the held-out ones, each part
    in name order. So both parts are slices of one array, and when it is the memory-mapped cache file,
    training reads photos from the page cache and the process never holds the folder in memory.
    """

    chw: np.ndarray
    names: list[str]
    skipped: list[str]
    cache_hit: bool
    n_train: int

    @property
    def images(self) -> np.ndarray:
        """The same photos as (N, H, W, 3), a view (no copy)."""
        return self.chw.transpose(0, 2, 3, 1)


def decode_folder(
    folder: str | Path,
    size: int = 64,
    limit: int | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool = True,
    test_fraction: float = 0.1,
) -> PhotoSet:
    """Find, decode (or map from the cache) and keep the readable photos of ``folder``, in split order.

    A cache that cannot be written (full disk, quota, read-only) is a :class:`~aelab.errors.WriteFailed`
    when the photos would not fit in memory; a folder small enough is decoded into memory instead, with
    one line saying so.
    """
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
    test = held_out_mask(names, test_fraction)
    names = [n for n, t in zip(names, test) if not t] + [n for n, t in zip(names, test) if t]  # split order
    key = cache_key(folder, names, size, test_fraction)
    cached = _read_cache(key, len(names), size) if use_cache else None
    if cached is not None:
        images, ok = cached
    else:
        workers = workers or min(8, os.cpu_count() or 1)
        paths = [os.path.join(folder, n) for n in names]  # strings: a Path each would cost ~0.3 KB a photo
        images = ok = None
        if use_cache:
            try:
                ok = _decode_to_cache(key, paths, size, workers, progress)
                images, _ = _read_cache(key, len(names), size) or (None, None)
            except WriteFailed as e:
                if len(names) * 3 * size * size > _memory_fallback_bytes():
                    raise WriteFailed(
                        e.path, e.reason, "set AELAB_DATA to a folder with room for the photo cache"
                    ) from None
                print(f"aelab: {e} (the photo cache); decoding into memory instead", file=sys.stderr)
        if images is None or ok is None:
            sink = _Sink(len(names), size, None)
            ok = _decode_into(sink, paths, size, workers, progress)
            images = sink.memory
            assert images is not None
    if not ok.any():  # before the skip note, so the user reads one line, not two about the same files
        raise UserError(f"{folder}: none of the {len(names)} photo file(s) could be decoded")
    kept = [n for n, good in zip(names, ok) if good]
    skipped = sorted(n for n, good in zip(names, ok) if not good)
    if skipped:
        shown = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        print(f"aelab: skipped {len(skipped)} unreadable photo(s) in {folder}: {shown}", file=sys.stderr)
    chw = images[: len(kept)]  # the readable photos sit compactly at the front, still in split order
    n_train = int(ok[: int((~test).sum())].sum())  # readable training photos (they come first)
    held = held_out_mask(kept, test_fraction)
    if held[:n_train].any() or not held[n_train:].all():
        # only for tiny folders, where skipped files change the split's "at least one on each side" rule
        order = np.concatenate([np.flatnonzero(~held), np.flatnonzero(held)])
        chw, kept, n_train = chw[order], [kept[i] for i in order], int((~held).sum())
    return PhotoSet(chw, kept, skipped, cached is not None, n_train)


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

    Both splits are views of the memory-mapped cache file, so a folder far larger than memory trains
    (on CPU; ``aelab.speed.resident`` copies to a GPU only what fits). ``limit`` keeps a stable, mixed
    subset of that many files (for quick runs). ``info`` says how many files were skipped and whether
    the cache was used.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise UserError(f"test fraction must be in [0, 1), got {test_fraction}")
    photos = decode_folder(folder, size, limit, use_cache, workers, progress, test_fraction)
    chw = torch.from_numpy(photos.chw)
    return ImageData(
        train=chw[: photos.n_train],
        test=chw[photos.n_train :],
        source=str(Path(folder).expanduser()),
        info=photo_info(photos, size, test_fraction),
    )


def photo_info(photos: PhotoSet, size: int, test_fraction: float) -> dict:
    """What a run records of its photo folder: skipped files, whether the cache was used, size and split rule."""
    return {
        "skipped": len(photos.skipped),
        "skipped_files": photos.skipped[:20],
        "cache": "hit" if photos.cache_hit else "miss",
        "image_size": size,
        "test_rule": f"sha256(relative path) < {test_fraction:g}",
    }


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
