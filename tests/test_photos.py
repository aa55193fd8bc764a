"""Photo folders: what each odd file decodes to, the cache, the path-hash split, Stanford Dogs download."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aelab import UserError
from aelab.cli import main
from aelab.data import photos as photos_mod
from aelab.data.photos import (
    download_stanford_dogs,
    find_photos,
    held_out_mask,
    load_image,
    load_photos,
    stanford_dogs_dir,
)

from conftest import DOGS_DIR, needs_dogs
from httpserver import serve


def _solid(mode: str, size: tuple[int, int], value) -> Image.Image:
    return Image.new(mode, size, value)


def _photo(path: Path, seed: int, size: tuple[int, int] = (72, 60)) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=95)
    return path


# ---------------------------------------------------------------- one image


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    # 32896 = 128 * 257: mid-grey in 16 bits; a naive convert("RGB") would clip it to white
    Image.fromarray(np.full((40, 40), 32896, dtype=np.uint16)).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    img = load_image(tmp_path / "g16.png")
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert np.all(img == 128)


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((32, 32, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red, fully transparent on the left half, opaque on the right
    rgba[:, 16:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png").astype(int)
    assert np.all(img[:, :24] == 255)  # left: white background (Lanczos blends only near the edge)
    assert np.all(np.abs(img[:, 40:] - [200, 0, 0]) <= 1)


def test_palette_with_transparency_and_cmyk_and_grey(tmp_path):
    p = _solid("P", (20, 20), 0)
    p.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    p.save(tmp_path / "p.png", transparency=1)  # index 1 transparent, index 0 opaque
    assert np.all(np.abs(load_image(tmp_path / "p.png").astype(int) - [10, 20, 30]) <= 1)
    _solid("CMYK", (30, 30), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=100)  # pure red in CMYK
    red = load_image(tmp_path / "c.jpg").astype(int).mean(axis=(0, 1))
    assert red[0] > 240 and red[1] < 15 and red[2] < 15
    _solid("L", (30, 30), 77).save(tmp_path / "l.png")
    assert np.all(load_image(tmp_path / "l.png") == 77)


def test_centre_crop_keeps_the_middle_square(tmp_path):
    a = np.zeros((100, 300, 3), dtype=np.uint8)
    a[:, :100] = (255, 0, 0)  # left third red, middle blue, right third green
    a[:, 100:200] = (0, 0, 255)
    a[:, 200:] = (0, 255, 0)
    Image.fromarray(a).save(tmp_path / "wide.png")
    img = load_image(tmp_path / "wide.png", size=32)
    assert img.shape == (32, 32, 3)
    assert np.all(np.abs(img[:, 4:-4].astype(int) - (0, 0, 255)) <= 2)


def test_downscale_is_antialiased(tmp_path):
    # a 1-pixel checkerboard averages to grey with a proper filter; nearest-neighbour would alias
    a = (np.indices((256, 256)).sum(0) % 2 * 255).astype(np.uint8)
    Image.fromarray(a, "L").save(tmp_path / "checker.png")
    img = load_image(tmp_path / "checker.png").astype(float)
    assert abs(img.mean() - 127.5) < 2 and img.std() < 4


def test_unreadable_files_are_none(tmp_path):
    good = _photo(tmp_path / "good.jpg", 0)
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "half.jpg").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "text.png").write_text("hello")
    assert load_image(good) is not None
    for name in ("zero.jpg", "half.jpg", "text.png"):
        assert load_image(tmp_path / name) is None, name


# ---------------------------------------------------------------- folders, cache, split


def _folder(root: Path, n: int, start: int = 0) -> Path:
    for i in range(start, start + n):
        _photo(root / f"breed_{i % 3}" / f"dog_{i:03d}.jpg", i)
    return root


def test_folder_counts_skipped_and_finds_all_extensions(tmp_path, capsys):
    root = _folder(tmp_path / "p", 12)
    for ext in ("png", "webp", "bmp", "jpeg", "JPG"):
        _photo(root / "other" / f"x.{ext}", 99)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    data = load_photos(root, progress=False)
    assert len(data.train) + len(data.test) == 17
    assert data.info["skipped"] == 1 and data.info["skipped_files"] == ["broken.jpg"]
    assert data.train.dtype == torch.uint8 and data.train.shape[1:] == (3, 64, 64)
    assert "skipped 1 unreadable photo(s)" in capsys.readouterr().err


def test_cache_hit_skips_decoding_and_changes_invalidate_it(tmp_path, monkeypatch, isolated_cache):
    root = _folder(tmp_path / "p", 10)
    first = load_photos(root, progress=False)
    assert first.info["cache"] == "miss"
    assert len(list((isolated_cache / "photos").glob("*.npy"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cache hit must not decode")

    monkeypatch.setattr(photos_mod, "load_image", no_decoding)
    second = load_photos(root, progress=False)
    assert second.info["cache"] == "hit"
    assert torch.equal(first.train, second.train) and torch.equal(first.test, second.test)

    monkeypatch.undo()
    monkeypatch.setenv("AELAB_DATA", str(isolated_cache))
    victim = root / "breed_0" / "dog_000.jpg"
    os.utime(victim, ns=(victim.stat().st_atime_ns, victim.stat().st_mtime_ns + 10**9))  # touched
    assert load_photos(root, progress=False).info["cache"] == "miss"
    _photo(root / "new.jpg", 123)  # added
    assert load_photos(root, progress=False).info["cache"] == "miss"
    assert load_photos(root, progress=False).info["cache"] == "hit"


def test_corrupt_cache_is_rebuilt(tmp_path, isolated_cache):
    root = _folder(tmp_path / "p", 6)
    load_photos(root, progress=False)
    (cache,) = (isolated_cache / "photos").glob("*.npy")
    cache.write_bytes(b"garbage")
    data = load_photos(root, progress=False)
    assert data.info["cache"] == "miss" and len(data.train) + len(data.test) == 6


def test_split_is_stable_when_photos_are_added():
    names = [f"breed_{i % 7}/dog_{i:05d}.jpg" for i in range(3000)]
    mask = held_out_mask(names)
    assert 0.08 < mask.mean() < 0.12
    more = names + [f"new/extra_{i}.jpg" for i in range(500)]
    rng = np.random.default_rng(0)
    shuffled = list(rng.permutation(more))
    mask_more = dict(zip(shuffled, held_out_mask(shuffled)))
    assert all(mask_more[n] == m for n, m in zip(names, mask))  # no old photo changed sides, in any order


def test_split_on_a_folder_is_stable_when_photos_are_added(tmp_path):
    root = _folder(tmp_path / "p", 40)
    before = load_photos(root, progress=False)
    _folder(root, 20, start=40)
    after = load_photos(root, progress=False)
    old = {t.numpy().tobytes() for t in before.test}
    new = {t.numpy().tobytes() for t in after.test}
    assert old <= new  # every old test photo is still a test photo
    old_train = {t.numpy().tobytes() for t in before.train}
    assert not (old_train & new)  # and no old training photo became one


def test_tiny_folders_get_both_splits(tmp_path):
    assert held_out_mask(["a.jpg", "b.jpg"]).sum() == 1
    root = _folder(tmp_path / "p", 3)
    data = load_photos(root, progress=False)
    assert len(data.train) >= 1 and len(data.test) >= 1


def test_limit_is_a_stable_subset(tmp_path):
    root = _folder(tmp_path / "p", 30)
    a = load_photos(root, limit=12, progress=False)
    b = load_photos(root, limit=12, progress=False)
    assert len(a.train) + len(a.test) == 12
    assert torch.equal(a.train, b.train)
    with pytest.raises(UserError, match="--limit"):
        load_photos(root, limit=0, progress=False)


@needs_dogs
def test_shared_dog_photos_load_exactly(isolated_cache):
    data = load_photos(DOGS_DIR, progress=False)
    assert len(data.train) + len(data.test) == 3300 and data.info["skipped"] == 0
    assert 0.08 < len(data.test) / 3300 < 0.12
    # the files are already 64x64: no crop or resize, so pixels equal Pillow's own RGB decode
    names = find_photos(DOGS_DIR)
    test_names = [n for n, t in zip(names, held_out_mask(names)) if t]
    expected = np.asarray(Image.open(DOGS_DIR / test_names[0]).convert("RGB"))
    assert np.array_equal(data.test[0].permute(1, 2, 0).numpy(), expected)


# ---------------------------------------------------------------- Stanford Dogs download


def _dogs_tar(extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        files = {
            "Images/n02085620-Chihuahua/n02085620_1.jpg": _jpeg(1),
            "Images/n02085782-Japanese_spaniel/a.jpg": _jpeg(2),
        }
        for name, body in {**files, **(extra or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def _jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(out, "JPEG")
    return out.getvalue()


def test_download_stanford_dogs_from_a_local_server(tmp_path):
    body = _dogs_tar()
    sha = hashlib.sha256(body).hexdigest()
    with serve({"/images.tar": body}) as (url, log):
        images = download_stanford_dogs(tmp_path / "sd", url + "/images.tar", sha, len(body))
    assert images == tmp_path / "sd" / "Images" and stanford_dogs_dir(tmp_path / "sd") == images
    assert find_photos(images) == ["n02085620-Chihuahua/n02085620_1.jpg", "n02085782-Japanese_spaniel/a.jpg"]
    assert not (tmp_path / "sd" / "images.tar").exists()  # the archive is removed after extraction
    assert log == [("/images.tar", None)]
    # done once: a second call does not touch the network
    assert download_stanford_dogs(tmp_path / "sd", "http://127.0.0.1:9/none", sha) == images
    data = load_photos(images, progress=False)
    assert len(data.train) + len(data.test) == 2


def test_download_resumes_a_partial_archive(tmp_path):
    body = _dogs_tar()
    (tmp_path / "sd").mkdir()
    (tmp_path / "sd" / "images.tar.part").write_bytes(body[:3000])
    with serve({"/images.tar": body}) as (url, log):
        download_stanford_dogs(tmp_path / "sd", url + "/images.tar", hashlib.sha256(body).hexdigest())
    assert log == [("/images.tar", "bytes=3000-")]


def test_download_checksum_and_size_are_checked(tmp_path):
    body = _dogs_tar()
    with serve({"/images.tar": body}) as (url, _):
        with pytest.raises(UserError, match="checksum mismatch"):
            download_stanford_dogs(tmp_path / "a", url + "/images.tar", "0" * 64)
        with pytest.raises(UserError, match="expected"):
            download_stanford_dogs(tmp_path / "b", url + "/images.tar", None, len(body) + 1)
    assert stanford_dogs_dir(tmp_path / "a") is None and stanford_dogs_dir(tmp_path / "b") is None


def test_download_refuses_an_archive_that_escapes(tmp_path):
    body = _dogs_tar({"../../evil.jpg": b"x"})
    with serve({"/images.tar": body}) as (url, _), pytest.raises(UserError, match="unsafe"):
        download_stanford_dogs(tmp_path / "sd", url + "/images.tar")
    assert not (tmp_path / "evil.jpg").exists() and stanford_dogs_dir(tmp_path / "sd") is None


def test_cli_download_stanford_dogs(tmp_path, monkeypatch, capsys):
    body = _dogs_tar()
    with serve({"/images.tar": body}) as (url, _):
        monkeypatch.setattr(photos_mod, "STANFORD_DOGS_URL", url + "/images.tar")
        monkeypatch.setattr(photos_mod, "STANFORD_DOGS_SHA256", hashlib.sha256(body).hexdigest())
        monkeypatch.setattr(photos_mod, "STANFORD_DOGS_BYTES", len(body))
        assert main(["download", "stanford-dogs", "--to", str(tmp_path / "sd")]) == 0
    assert f"done: {tmp_path / 'sd' / 'Images'}" in capsys.readouterr().out


def _mapping_of(path: Path) -> list[tuple[int, int]]:
    """Address ranges where this process has ``path`` memory-mapped (from /proc/self/maps)."""
    ranges = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == str(path):
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            ranges.append((lo, hi))
    return ranges


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("twice", [False, True], ids=["miss", "hit"])
def test_training_tensors_are_the_memory_mapped_cache_file(tmp_path, isolated_cache, twice):
    """Train and test are views of the cache file's pages, not a copy in the process's memory."""
    root = _folder(tmp_path / "p", 30)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff")  # a skipped file: its row must not end up in either split
    if twice:
        load_photos(root, progress=False)
    data = load_photos(root, progress=False)
    assert data.info["cache"] == ("hit" if twice else "miss")
    (npy,) = (isolated_cache / "photos").glob("*.npy")
    ranges = _mapping_of(npy)
    assert ranges, "the cache file is not memory-mapped"
    for t in (data.train, data.test):
        start, end = t.data_ptr(), t.data_ptr() + t.nbytes
        assert any(lo <= start and end <= hi for lo, hi in ranges), "a split was copied out of the mapped file"
    assert len(data.train) + len(data.test) == 30
    # the same pixels as decoding each file directly, in name order within each split
    names = find_photos(root)
    names.remove("broken.jpg")
    test = held_out_mask(names)
    want_train = [n for n, t in zip(names, test) if not t]
    assert np.array_equal(data.train[0].permute(1, 2, 0).numpy(), load_image(root / want_train[0]))
    assert np.array_equal(
        data.test[-1].permute(1, 2, 0).numpy(), load_image(root / [n for n, t in zip(names, test) if t][-1])
    )


def test_cache_without_its_index_is_a_miss(tmp_path, isolated_cache):
    """A decode stopped after the images were renamed but before the index was written: rebuilt, not trusted."""
    root = _folder(tmp_path / "p", 8)
    first = load_photos(root, progress=False)
    (index,) = (isolated_cache / "photos").glob("*.json")
    index.unlink()
    again = load_photos(root, progress=False)
    assert again.info["cache"] == "miss" and torch.equal(first.train, again.train)
    (npy,) = (isolated_cache / "photos").glob("*.npy")
    npy.write_bytes(npy.read_bytes()[:200])  # truncated
    assert load_photos(root, progress=False).info["cache"] == "miss"
    assert not [p for p in (isolated_cache / "photos").iterdir() if p.name.startswith(".")], "temporary file left"
