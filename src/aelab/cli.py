"""The ``aelab`` command: parse flags, check them, call a study. Nothing else lives here.

A mistake the user can fix (bad flag, missing data, corrupt file) prints one line and exits 2;
Ctrl-C during training exits 130 after the last checkpoint is saved; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from aelab.errors import TrainingInterrupted, UserError


def _positive_int(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"{name} must be > 0, got {v}")
        return v

    return parse


def _positive_float(name: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not (v > 0 and math.isfinite(v)):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number > 0, got {text}")
        return v

    return parse


def _nonnegative_float(name: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not (v >= 0 and math.isfinite(v)):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number >= 0, got {text}")
        return v

    return parse


def _int_list(name: str) -> Callable[[str], tuple[int, ...]]:
    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be comma-separated whole numbers, got {text!r}") from None
        if not values or any(v <= 0 for v in values):
            raise argparse.ArgumentTypeError(f"{name} must be positive whole numbers, got {text!r}")
        return values

    return parse


def _float_list(name: str) -> Callable[[str], tuple[float, ...]]:
    def parse(text: str) -> tuple[float, ...]:
        try:
            values = tuple(float(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be comma-separated numbers, got {text!r}") from None
        if not values or any(not (v > 0 and math.isfinite(v)) for v in values):
            raise argparse.ArgumentTypeError(f"every {name} must be a finite number > 0, got {text!r}")
        return values

    return parse


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (``aelab: error: ...``) with exit code 2 and no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"aelab: error: {message} (see: {self.prog} --help)\n")


def _common(p: argparse.ArgumentParser, out: str, batch: int, lr: float) -> None:
    p.add_argument("--out", type=Path, default=Path(out), help=f"output folder (default: {out})")
    p.add_argument(
        "--epochs",
        type=_positive_int("--epochs"),
        default=None,
        help="epochs per model (default: chosen so the study fits its time budget; see README)",
    )
    p.add_argument(
        "--batch-size", type=_positive_int("--batch-size"), default=batch, help=f"batch size (default: {batch})"
    )
    p.add_argument("--lr", type=_positive_float("--lr"), default=lr, help=f"Adam learning rate (default: {lr:g})")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same data, same device: same numbers")
    p.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="where to train: auto picks CUDA when present (default: auto)",
    )
    p.add_argument("--quick", action="store_true", help="a tiny, fast run for smoke tests (not a real result)")
    p.add_argument("--resume", action="store_true", help="continue a stopped run in --out from its checkpoints")
    p.add_argument("--overwrite", action="store_true", help="start afresh in an --out that already holds a run")
    p.add_argument("--compile", action="store_true", help="torch.compile the models (helps on GPUs)")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")


def build_parser() -> argparse.ArgumentParser:
    from aelab.studies.dogs import DEFAULT_PARTS as DOGS_DEFAULT
    from aelab.studies.dogs import PARTS as DOGS_PARTS
    from aelab.studies.dogs import VARIANCES as DOGS_VARIANCES
    from aelab.studies.mnist import DEFAULT_PARTS as MNIST_DEFAULT
    from aelab.studies.mnist import PARTS as MNIST_PARTS

    parser = _Parser(
        prog="aelab",
        description="The deep-autoencoder lab, end to end: "
        "train, evaluate and write a report (report.md, figures/, metrics.json).",
    )
    parser.add_argument("--version", action="version", version=f"aelab {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    m = sub.add_parser(
        "mnist",
        help="the MNIST study: AE-2D, denoising, latent manifold, L2, explorations",
        description="The MNIST study. Without --data-dir it uses cached MNIST, downloads it, "
        "or falls back to the built-in 5,000-digit sample.",
    )
    m.add_argument("--data-dir", type=Path, default=None, help="folder with the 4 MNIST-format IDX files (.gz or not)")
    _common(m, "runs/mnist", 128, 3e-3)
    m.add_argument(
        "--parts",
        default=",".join(MNIST_DEFAULT),
        help=f"comma-separated parts to run, from {','.join(MNIST_PARTS)} (default: the lab's {','.join(MNIST_DEFAULT)}; "
        "compare adds a digit judge, latent-quality and generation tables)",
    )
    m.add_argument(
        "--hidden",
        type=_int_list("--hidden"),
        default=(1024, 512, 128),
        help="encoder hidden widths, mirrored in the decoder (default: 1024,512,128)",
    )
    m.add_argument(
        "--grid-size", type=_positive_int("--grid-size"), default=20, help="latent grid points per axis (default: 20)"
    )
    m.add_argument(
        "--grid-range", type=_positive_float("--grid-range"), default=5.0, help="the grid covers [-R, R]^2 (default: 5)"
    )
    m.add_argument(
        "--weight-decay",
        type=_nonnegative_float("--weight-decay"),
        default=1e-4,
        help="Adam weight decay of the L2 part (default: 1e-4)",
    )
    m.add_argument(
        "--l2-lambda",
        type=_nonnegative_float("--l2-lambda"),
        default=1e-5,
        help="lambda of the explicit sum-of-squared-weights penalty (default: 1e-5)",
    )
    m.add_argument("--no-download", action="store_true", help="never try the MNIST mirrors")

    g = sub.add_parser(
        "dogs",
        help="the dogs study: conv AE, latent samples, Gaussian sampling, perturbation, noisy latent",
        description="The dog-photo study. Without --data it uses Stanford Dogs downloaded into the cache "
        "(aelab download stanford-dogs).",
    )
    g.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder of photos, searched recursively for jpg/jpeg/png/webp/bmp (e.g. Kaggle's all-dogs/)",
    )
    _common(g, "runs/dogs", 64, 2e-3)
    g.add_argument(
        "--parts",
        default=",".join(DOGS_DEFAULT),
        help=f"comma-separated parts to run, from {','.join(DOGS_PARTS)} (default: the lab's {','.join(DOGS_DEFAULT)}; "
        "channel adds PSNR vs SNR against JPEG/WebP, channel16 the same at a 16x16x16 latent)",
    )
    g.add_argument(
        "--variances",
        type=_float_list("--variances"),
        default=DOGS_VARIANCES,
        help="latent noise variances of the noisy models, one model each "
        f"(default: {','.join(f'{v:g}' for v in DOGS_VARIANCES)})",
    )
    g.add_argument(
        "--latent-channels",
        type=_positive_int("--latent-channels"),
        default=16,
        help="channels of the latent code (default: 16)",
    )
    g.add_argument(
        "--latent-size",
        type=int,
        choices=(8, 16),
        default=8,
        help="height and width of the latent code: 8 (the lab's 16x8x8) or 16 (16x16x16) (default: 8)",
    )
    g.add_argument(
        "--limit", type=_positive_int("--limit"), default=None, help="use only N photos (a stable, mixed subset)"
    )

    d = sub.add_parser("download", help="fetch a data set into the cache (or --to DIR)")
    d.add_argument("dataset", choices=("mnist", "stanford-dogs"), help="which data set")
    d.add_argument("--to", type=Path, default=None, help="target folder (default: the aelab cache)")
    d.add_argument("--debug", action="store_true", help="show full tracebacks")

    e = sub.add_parser(
        "evaluate",
        help="score a finished run's models on other data (an IDX folder or a photo folder)",
        description="Load every finished model of RUN_DIR (a dogs or mnist run) and score it on all images "
        "of --data: PSNR/SSIM per model, noisy models also at their training variance. Prints a table "
        "and writes JSON with the same keys as the run's metrics.json.",
    )
    e.add_argument("run_dir", type=Path, help="output folder of a finished aelab run")
    e.add_argument("--data", type=Path, required=True, help="IDX folder (4 MNIST-format files) or photo folder")
    e.add_argument(
        "--json", type=Path, default=None, help="where to write the scores (default: RUN_DIR/evaluate_<data>.json)"
    )
    e.add_argument(
        "--batch-size", type=_positive_int("--batch-size"), default=64, help="images per forward pass (default: 64)"
    )
    e.add_argument("--limit", type=_positive_int("--limit"), default=None, help="photo folders: use only N photos")
    e.add_argument("--seed", type=int, default=0, help="seed of the channel noise")
    e.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to run (default: auto)")
    e.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def _version() -> str:
    from aelab import __version__

    return __version__


def _shared_settings(args: argparse.Namespace) -> dict:
    """The flags every study takes (see ``_common``), as config fields."""
    names = ("out", "epochs", "batch_size", "lr", "seed", "device", "quick", "resume", "overwrite", "compile")
    return {name: getattr(args, name) for name in names}


def _run_mnist(args: argparse.Namespace) -> Path:
    from aelab.studies.base import parse_parts
    from aelab.studies.mnist import PARTS, MnistConfig, run_mnist

    cfg = MnistConfig(
        **_shared_settings(args),
        data_dir=args.data_dir,
        parts=parse_parts(args.parts, PARTS),
        hidden=args.hidden,
        grid_size=args.grid_size,
        grid_range=args.grid_range,
        weight_decay=args.weight_decay,
        l2_lambda=args.l2_lambda,
        allow_download=not args.no_download,
    )
    return run_mnist(cfg)


def _run_dogs(args: argparse.Namespace) -> Path:
    from aelab.studies.base import parse_parts
    from aelab.studies.dogs import PARTS, DogsConfig, run_dogs

    cfg = DogsConfig(
        **_shared_settings(args),
        data=args.data,
        parts=parse_parts(args.parts, PARTS),
        variances=args.variances,
        latent_channels=args.latent_channels,
        latent_size=args.latent_size,
        limit=args.limit,
    )
    return run_dogs(cfg)


def _run_evaluate(args: argparse.Namespace) -> Path:
    from aelab.evaluate_run import evaluate_run

    return evaluate_run(
        args.run_dir,
        args.data,
        args.json,
        device=args.device,
        batch_size=args.batch_size,
        seed=args.seed,
        limit=args.limit,
    )


def _run_download(args: argparse.Namespace) -> Path:
    if args.dataset == "mnist":
        from aelab.data.mnist import download_mnist

        return download_mnist(args.to)
    from aelab.data.photos import download_stanford_dogs

    return download_stanford_dogs(args.to)


COMMANDS: dict[str, Callable[[argparse.Namespace], Path]] = {
    "mnist": _run_mnist,
    "dogs": _run_dogs,
    "download": _run_download,
    "evaluate": _run_evaluate,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from aelab import report

    report.COMMAND = ["aelab", *(sys.argv[1:] if argv is None else argv)]
    if args.command is None:
        parser.print_help()
        return 2
    try:
        result = COMMANDS[args.command](args)
    except UserError as e:
        if args.debug:
            raise
        print(f"aelab: error: {e}", file=sys.stderr)
        return 2
    except TrainingInterrupted as e:
        print(f"aelab: {e}; continue with --resume", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        more = "" if args.command == "download" else "; checkpoints of finished epochs are kept, continue with --resume"
        print(f"aelab: interrupted{more}", file=sys.stderr)
        return 130
    finally:
        from aelab.runtime import shutdown_distributed

        shutdown_distributed()
    if os.environ.get("RANK", "0") == "0":  # under torchrun: one line for the run, not one per rank
        print(f"aelab: done: {result}")
    return 0
