"""Peak memory of a large photo folder through aelab's loader: decoding it, and reading it back.

Builds a folder of ``--n`` photos from the shared dog photos (hard links under new names, so every
file is a distinct photo to aelab: its own name, its own place in the split), then runs each phase in
a fresh child process and reports that process's peak resident memory (``ru_maxrss``) and its peak
anonymous memory (``RssAnon``, sampled): the part the kernel cannot take back. Pages of the memory-
mapped cache that were read count in ``ru_maxrss`` as file-backed page cache, which the kernel drops
under memory pressure, so ``RssAnon`` is what bounds the folder size a machine can train on.

Phases: ``baseline`` (python, torch and aelab imported, nothing loaded), ``decode`` (``load_photos``
with an empty cache: decode into the cache file), ``read`` (``load_photos`` from the cache, then one
epoch of batches gathered in random order as ``train.fit`` does), and ``in-memory`` (the photos decoded
into one array in memory, as aelab did before the cache was memory-mapped; ``--skip-in-memory`` to
leave it out).

    python benchmarks/photo_memory.py --n 100000 --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SHARED_DOGS = Path(__file__).resolve().parents[2] / "shared" / "data" / "dogs"


def build_folder(source: Path, n: int, dest: Path) -> int:
    """``n`` photos in ``dest/breed_k/`` made from ``source``'s photos (hard links, copies across devices)."""
    photos = sorted(p for p in source.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not photos:
        raise SystemExit(f"no photos in {source}")
    for i in range(n):
        src = photos[i % len(photos)]
        folder = dest / f"breed_{i % 120:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{i:07d}_{src.name}"
        try:
            os.link(src, target)
        except OSError:
            shutil.copy2(src, target)
    return len(photos)


def _status(field: str) -> int:
    """A ``/proc/self/status`` field in bytes (0 where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class AnonPeak:
    """Samples RssAnon every few milliseconds in a thread; ``peak`` is the largest value seen."""

    def __init__(self, every: float = 0.005) -> None:
        self.peak = _status("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.peak = max(self.peak, _status("RssAnon"))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status("RssAnon"))
        return self.peak


def phase(name: str, folder: Path) -> dict:
    """One phase, in this (fresh) process; returns its measurements."""
    import torch

    from aelab.data.photos import decode_folder, load_photos

    torch.set_num_threads(1)
    sampler = AnonPeak()
    t0 = time.perf_counter()
    result: dict = {"phase": name}
    if name == "decode" or name == "read":
        data = load_photos(folder, progress=False)
        result.update(cache=data.info["cache"], n_train=len(data.train), n_test=len(data.test))
        if name == "read":  # one epoch of batches gathered by index, converted to float: the training loop's reads
            order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))
            total = 0.0
            for i in range(0, len(order), 256):
                total += float(data.train[order[i : i + 256]].float().mean())
            result["checksum"] = round(total, 3)
    elif name == "in-memory":
        photos = decode_folder(folder, use_cache=False, progress=False)
        result.update(n=len(photos.names), array_bytes=int(photos.chw.nbytes))
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["peak_anon_bytes"] = sampler.stop()
    result["end_rss_file_bytes"] = _status("RssFile")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="photos in the generated folder")
    ap.add_argument("--source", type=Path, default=SHARED_DOGS, help="photos to make the folder from")
    ap.add_argument("--tmp", type=Path, default=None, help="where the folder and the cache go (default: a temp dir)")
    ap.add_argument("--skip-in-memory", action="store_true", help="leave out the old in-memory decode")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--phase", help=argparse.SUPPRESS)  # internal: run one phase in this process
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args.folder)))
        return

    root = Path(tempfile.mkdtemp(prefix="aelab-photo-memory-", dir=args.tmp))
    try:
        t0 = time.perf_counter()
        distinct = build_folder(args.source, args.n, root / "photos")
        print(f"built {args.n:,} photos ({distinct:,} distinct images) in {time.perf_counter() - t0:.1f} s", flush=True)
        env = {
            **os.environ,
            "AELAB_DATA": str(root / "cache"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        }
        phases = ["baseline", "decode", "read"] + ([] if args.skip_in_memory else ["in-memory"])
        results = []
        for name in phases:
            cmd = [sys.executable, __file__, "--phase", name, "--folder", str(root / "photos")]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(r)
            print(
                f"{name:>10}: peak RSS {r['peak_rss_bytes'] / 2**20:8.1f} MiB, peak RssAnon "
                f"{r['peak_anon_bytes'] / 2**20:8.1f} MiB, {r['seconds']:7.1f} s  {json.dumps({k: v for k, v in r.items() if k in ('cache', 'n_train', 'n_test', 'n', 'array_bytes')})}",
                flush=True,
            )
        cache = sorted((root / "cache" / "photos").glob("*.npy"))
        summary = {
            "n": args.n,
            "distinct_images": distinct,
            "cache_file_bytes": cache[0].stat().st_size if cache else None,
            "cpu": _cpu(),
            "phases": results,
        }
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2) + "\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        return f"{fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} CPUs"
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
