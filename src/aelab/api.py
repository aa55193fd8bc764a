"""The ``aelab`` command from Python: ``aelab.mnist(...)`` and ``aelab.dogs(...)`` return a finished :class:`Run`.

One source for the settings: the keywords are the study config's fields (``MnistConfig``,
``DogsConfig``), the flags' own names with underscores (``batch_size`` for ``--batch-size``;
``allow_download=False`` for ``--no-download``), with the flags' defaults. Each value is turned into the
flag that says the same and parsed by the study's own flag parser, so Python and the command line
share every check and every message: a mistake is an :class:`aelab.UserError` whose text is the line
``aelab <study>`` prints after ``aelab: error:``. The run then goes exactly as the command's would
(same study function, same seed path), and its ``metrics.json`` records the equivalent command line.

The signatures and docstrings of :func:`mnist` and :func:`dogs` are made from the config fields too,
so ``help(aelab.mnist)`` and a notebook's tooltip list every setting with its default.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aelab.results import Run, open_run
from aelab.studies.config import StudyConfig, flag_name
from aelab.studies.dogs.config import DogsConfig
from aelab.studies.mnist.config import MnistConfig

__all__ = ["Run", "dogs", "mnist", "open_run"]


def run_study(study: str, settings: dict[str, Any], config: str | Path | None = None) -> Run:
    """Run study ``study`` with keyword ``settings`` (``config``: a run's ``config.toml`` whose settings
    replace the defaults, as ``--config``); return the finished run."""
    from aelab import report
    from aelab.faults import install_sigterm_handler
    from aelab.runtime import barrier, shutdown_distributed
    from aelab.studies.catalog import studies
    from aelab.studies.config import config_defaults_from_file, config_from_settings, settings_argv

    entry = studies()[study]
    defaults = config_defaults_from_file(Path(config), entry.config, study) if config is not None else None
    cfg = config_from_settings(entry.config, entry.registry, study, settings, defaults)
    argv = settings_argv(entry.config, study, settings) + ([f"--config={config}"] if config is not None else [])
    command, report.COMMAND = report.COMMAND, ["aelab", study, *argv]  # what metrics.json says produced it
    restore_sigterm = install_sigterm_handler()  # SIGTERM (Kaggle's time limit, `timeout`) stops like Ctrl-C
    try:
        path = entry.run(cfg)
        barrier()  # under torchrun, rank 0 writes the report: every rank returns once it is there
    finally:
        report.COMMAND = command
        shutdown_distributed()
        restore_sigterm()
    return open_run(path, cfg.device)


def mnist(
    data: str | Path | None = None,
    parts: Sequence[str] | str | None = None,
    out: str | Path | None = None,
    *,
    config: str | Path | None = None,
    **flags: Any,
) -> Run:
    """The MNIST study (the lab's experiment one), as ``aelab mnist``; returns the finished :class:`Run`.

    ``data``: a folder of the four MNIST IDX files; without it cached MNIST, a download, or the built-in
    5,000-digit sample. ``parts``: part names (default: the study's default parts). ``out``: the run
    folder (default ``runs/mnist``). ``config``: a run's ``config.toml`` to replay (settings given here win).
    Any other setting by its flag's name with underscores; ``None`` keeps a default. A bad value raises
    :class:`aelab.UserError` with the command line's message.

    Settings (defaults as ``aelab mnist --help`` shows them):
    """
    return run_study("mnist", {"data": data, "parts": parts, "out": out, **flags}, config)


def dogs(
    data: str | Path | None = None,
    parts: Sequence[str] | str | None = None,
    out: str | Path | None = None,
    *,
    config: str | Path | None = None,
    **flags: Any,
) -> Run:
    """The dog-photo study (the lab's experiment two), as ``aelab dogs``; returns the finished :class:`Run`.

    ``data``: any folder of photos, searched recursively (Kaggle's ``all-dogs/``, Stanford Dogs'
    ``Images/``); without it Stanford Dogs from the cache. ``parts``: part names (default: the study's
    default parts). ``out``: the run folder (default ``runs/dogs``). ``config``: a run's ``config.toml``
    to replay (settings given here win). Any other setting by its flag's name with underscores; ``None``
    keeps a default. A bad value raises :class:`aelab.UserError` with the command line's message.

    Settings (defaults as ``aelab dogs --help`` shows them):
    """
    return run_study("dogs", {"data": data, "parts": parts, "out": out, **flags}, config)


def _settings(cls: type[StudyConfig]) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.name == "parts" or "help" in f.metadata]


def _document(fn: Any, cls: type[StudyConfig]) -> None:
    """Give ``fn`` the config's settings as its signature and as a list in its docstring."""
    lines = []
    for f in _settings(cls):
        if f.name == "parts":
            continue
        flag = ("False: " if f.metadata["negate"] else "") + flag_name(f)
        default = str(f.default) if isinstance(f.default, Path) else f.default
        lines.append(f"{f.name} = {default!r} ({flag}): {f.metadata['help'].replace('%%', '%')}")
    fn.__doc__ = inspect.cleandoc(fn.__doc__) + "\n\n" + "\n".join(lines) + "\n"
    params = [inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="str | Path | None")]
    leading = ("data", "parts", "out")  # positional, as in the def; parts' default is the registry's
    fields = {f.name: f for f in _settings(cls)}
    params[:0] = [
        inspect.Parameter(
            n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None if n == "parts" else fields[n].default
        )
        for n in leading
    ]
    params += [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
        for f in _settings(cls)
        if f.name not in leading
    ]
    fn.__signature__ = inspect.Signature(params, return_annotation="Run")


_document(mnist, MnistConfig)
_document(dogs, DogsConfig)
