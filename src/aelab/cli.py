"""The ``aelab`` command: parse flags, check them, call a study. Nothing else lives here.

A study's flags come from its config dataclass (``aelab.studies.config``): each field's help, default
and bounds are written once, there. A mistake the user can fix (bad flag, missing data, corrupt file)
prints one line and exits 2; Ctrl-C during training exits 130 after the last checkpoint is saved;
``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from aelab.errors import TrainingInterrupted, UserError


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (``aelab: error: ...``) with exit code 2 and no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"aelab: error: {message} (see: {self.prog} --help)\n")


def build_parser(config_defaults: dict[str, dict] | None = None) -> argparse.ArgumentParser:
    """The whole command line; ``config_defaults`` (study -> settings from a ``--config`` file) replace
    the built-in defaults, so flags given on the command line still win."""
    from aelab.studies.config import add_config_flags

    parser = _Parser(
        prog="aelab",
        description="The deep-autoencoder lab, end to end: "
        "train, evaluate and write a report (report.md, figures/, metrics.json).",
    )
    parser.add_argument("--version", action="version", version=f"aelab {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    from aelab.studies.catalog import studies

    for name, study in studies().items():
        p = sub.add_parser(name, help=study.help, description=study.description)
        add_config_flags(p, study.config, study.registry.help(), ",".join(study.registry.defaults))
        p.add_argument("--config", type=Path, default=None, help="replay a run's config.toml (flags given here win)")
        p.add_argument("--debug", action="store_true", help="show full tracebacks")
        if config_defaults and name in config_defaults:
            p.set_defaults(**config_defaults[name])

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
    _model_io_flags(e)

    x = sub.add_parser(
        "export",
        help="write every model's codes of a data folder to a .npz file",
        description="Encode every image of --data (IDX folder or photo folder) with each finished model of RUN_DIR "
        "and write the codes, with labels (IDX) or file names (photos), to --out.",
    )
    x.add_argument("run_dir", type=Path, help="output folder of a finished aelab run")
    x.add_argument("--data", type=Path, required=True, help="IDX folder (4 MNIST-format files) or photo folder")
    x.add_argument("--out", type=Path, default=Path("codes.npz"), help="the .npz file to write (default: %(default)s)")
    _model_io_flags(x, batch=256)

    v = sub.add_parser("explore", help="open a run's interactive latent explorer (explorer.html) in a browser")
    v.add_argument("run_dir", type=Path, help="output folder of a finished aelab run")
    v.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def _model_io_flags(p: argparse.ArgumentParser, batch: int = 64) -> None:
    """Flags of the commands that run a finished run's models over a data folder."""
    from aelab.studies.config import DEVICES, bounded

    p.add_argument(
        "--batch-size",
        type=bounded("--batch-size", int, 0),
        default=batch,
        help="images per forward pass (default: %(default)s)",
    )
    p.add_argument("--limit", type=bounded("--limit", int, 0), default=None, help="use only the first N images")
    p.add_argument("--seed", type=int, default=0, help="seed of the channel noise (default: %(default)s)")
    p.add_argument("--device", default="auto", choices=DEVICES, help="where to run (default: %(default)s)")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")


def _version() -> str:
    from aelab import __version__

    return __version__


def _config_file(argv: Sequence[str]) -> tuple[str, Path] | None:
    """``(study, path)`` when the command line names a ``--config`` file for a study."""
    argv = list(argv)
    if not argv or argv[0] not in ("mnist", "dogs"):
        return None
    for i, a in enumerate(argv):
        if a == "--config" and i + 1 < len(argv):
            return argv[0], Path(argv[i + 1])
        if a.startswith("--config="):
            return argv[0], Path(a.split("=", 1)[1])
    return None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; with ``--config FILE`` the file's settings become the defaults."""
    named = _config_file(argv)
    if named is None:
        return build_parser().parse_args(argv)
    from aelab.studies.catalog import studies
    from aelab.studies.config import config_defaults_from_file

    study, path = named
    try:
        defaults = config_defaults_from_file(path, studies()[study].config, study)
    except UserError as e:
        print(f"aelab: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    return build_parser({study: defaults}).parse_args(argv)


def _run_study(args: argparse.Namespace) -> Path:
    from aelab.studies.catalog import studies
    from aelab.studies.config import config_from_args

    study = studies()[args.command]
    return study.run(config_from_args(study.config, args, study.registry.parse(args.parts)))


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


def _run_export(args: argparse.Namespace) -> Path:
    from aelab.export import export_codes

    return export_codes(
        args.run_dir, args.data, args.out, device=args.device, batch_size=args.batch_size, limit=args.limit
    )


def _run_explore(args: argparse.Namespace) -> Path:
    from aelab.explorer import open_explorer

    print(open_explorer(args.run_dir))
    return Path(args.run_dir) / "explorer.html"


def _run_download(args: argparse.Namespace) -> Path:
    if args.dataset == "mnist":
        from aelab.data.mnist import download_mnist

        return download_mnist(args.to)
    from aelab.data.photos import download_stanford_dogs

    return download_stanford_dogs(args.to)


COMMANDS: dict[str, Callable[[argparse.Namespace], Path]] = {
    "mnist": _run_study,
    "dogs": _run_study,
    "download": _run_download,
    "evaluate": _run_evaluate,
    "export": _run_export,
    "explore": _run_explore,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    from aelab import report

    report.COMMAND = ["aelab", *argv]
    if args.command is None:
        build_parser().print_help()
        return 2
    from aelab.errors import INTERRUPTED_EXIT, TERMINATED_EXIT, Terminated
    from aelab.faults import install_sigterm_handler

    restore_sigterm = install_sigterm_handler()  # SIGTERM (timeout, SLURM, k8s, torchrun) stops like Ctrl-C, exit 143
    try:
        result = COMMANDS[args.command](args)
    except UserError as e:
        if args.debug:
            raise
        print(f"aelab: error: {e}", file=sys.stderr)
        return 2
    except TrainingInterrupted as e:
        print(f"aelab: {e}; continue with --resume", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM outside a training step
        what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        more = "" if args.command == "download" else "; checkpoints of finished epochs are kept, continue with --resume"
        print(f"aelab: {what}{more}", file=sys.stderr)
        return TERMINATED_EXIT if isinstance(e, Terminated) else INTERRUPTED_EXIT
    finally:
        from aelab.runtime import shutdown_distributed

        shutdown_distributed()
        restore_sigterm()
    if os.environ.get("RANK", "0") == "0":  # under torchrun: one line for the run, not one per rank
        print(f"aelab: done: {result}")
    return 0
