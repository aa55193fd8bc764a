"""The settings every study shares, written once, and how they become flags and ``config.toml``.

A study's config is a dataclass whose fields carry their own help and bounds (:func:`option`), so the
``aelab`` command builds each subcommand's flags from the fields (defaults shown by argparse), one
validator (:func:`bounded`) checks every number, and a run writes its resolved settings to
``config.toml`` which ``--config`` replays (flags on the command line still win).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aelab.errors import UserError

NOT_IN_CONFIG_FILE = ("resume", "overwrite")  # how to treat the folder, not how the run is made
DEVICES = ("auto", "cpu", "cuda", "mps")  # the --device choices; aelab.runtime.resolve_device knows each


def option(
    default: Any,
    help: str,
    *,
    kind: type | None = None,
    low: float | None = None,
    strict: bool = True,
    high: float | None = None,
    many: bool = False,
    choices: tuple | None = None,
    aliases: tuple[str, ...] = (),
    flag: str | None = None,
    negate: bool = False,
) -> Any:
    """A config field with what its flag needs: ``kind`` (int/float/str/Path/bool), a lower bound
    (``strict``: ``> low``, else ``>= low``), an upper bound (``< high``), ``many`` (a comma-separated list), ``choices``, extra
    flag names, and ``negate`` (a ``--no-...`` flag that stores False)."""
    meta = {"help": help, "kind": kind, "low": low, "strict": strict, "high": high, "many": many, "choices": choices}
    meta |= {"aliases": aliases, "flag": flag, "negate": negate}
    return field(default=default, metadata=meta)


def bounded(
    name: str, kind: type, low: float | None = None, strict: bool = True, many: bool = False, high: float | None = None
) -> Callable:
    """The one validator for numeric flags: a number (or comma-separated numbers) of ``kind`` above ``low``
    (and below ``high``)."""
    whole = kind is int

    def one(text: str) -> int | float:
        v = kind(text)
        if not whole and not math.isfinite(v):
            raise ValueError(text)
        return v

    def ok(v: float) -> bool:
        return (low is None or (v > low if strict else v >= low)) and (high is None or v < high)

    sign = ">" if strict else ">="
    below = f" and < {high:g}" if high is not None else ""

    def parse(text: str) -> Any:
        try:
            values = tuple(one(t.strip()) for t in str(text).split(",") if t.strip()) if many else (one(text),)
        except ValueError:
            if many:
                what = "comma-separated whole numbers" if whole else "comma-separated numbers"
                raise argparse.ArgumentTypeError(f"{name} must be {what}, got {text!r}") from None
            what = (
                "a whole number"
                if whole
                else f"a finite number {sign} {low:g}{below}"
                if low is not None
                else "a number"
            )
            raise argparse.ArgumentTypeError(f"{name} must be {what}, got {text!r}") from None
        if many and (not values or not all(ok(v) for v in values)):
            what = "positive whole numbers" if whole else f"finite numbers {sign} {low:g}{below}"
            raise argparse.ArgumentTypeError(f"{name} must be {what}, got {text!r}")
        if not many and not ok(values[0]):
            what = f"{sign} {low:g}{below}" if whole else f"a finite number {sign} {low:g}{below}"
            raise argparse.ArgumentTypeError(f"{name} must be {what}, got {text}")
        return values if many else values[0]

    return parse


@dataclass
class StudyConfig:
    """Fields both studies share. Subclasses add their own and may change defaults."""

    data: Path | None = option(None, "data folder", kind=Path)
    out: Path = option(Path("runs/study"), "output folder", kind=Path)
    epochs: int | None = option(
        None, "epochs per model (default: from each model's training budget; see README)", kind=int, low=0
    )
    batch_size: int = option(128, "batch size", kind=int, low=0)
    lr: float = option(1e-3, "Adam learning rate (warm-up, then cosine decay to 5%%)", kind=float, low=0)
    seed: int = option(0, "random seed; same seed, same data, same device: same numbers", kind=int)
    device: str = option(
        "auto", "where to train: auto picks CUDA, then Apple's GPU (mps), then the CPU", choices=DEVICES
    )
    precision: str = option(
        "auto",
        "auto: bf16 autocast where the device runs it natively (CUDA, CPUs with AVX512-BF16 or AMX, MPS on macOS 14), "
        "else fp32; fp32: full fp32 everywhere (numbers that match across CPUs)",
        choices=("auto", "fp32"),
    )
    parts: tuple[str, ...] = ()  # empty: the study's default parts (its registry says which)
    quick: bool = option(False, "a tiny, fast run for smoke tests (not a real result)", kind=bool)
    resume: bool = option(False, "continue a stopped run in --out from its checkpoints", kind=bool)
    overwrite: bool = option(False, "start afresh in an --out that already holds a run", kind=bool)
    compile: bool = option(False, "torch.compile the models (helps on GPUs)", kind=bool)
    jobs: int = option(
        0,
        "worker processes that train a study's MLPs side by side on a CPU, one thread each (0: one per core; "
        "1: none); the numbers do not change",
        kind=int,
        low=0,
        strict=False,
    )
    tensorboard: Path | None = option(
        None, "also write TensorBoard logs (losses, lr, reconstructions, embeddings) to this folder", kind=Path
    )

    def to_toml(self, version: str) -> str:
        """Every setting of this run, resolved, as TOML (``None`` values commented out)."""
        lines = [f"# aelab {version}: replay with `aelab <study> --config <this file>`", f'aelab_version = "{version}"']
        for f in dataclasses.fields(self):
            if f.name in NOT_IN_CONFIG_FILE:
                continue
            v = getattr(self, f.name)
            lines.append(f"# {f.name} = (not set)" if v is None else f"{f.name} = {_toml_value(v)}")
        return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Path):
        v = str(v.expanduser().resolve())
    return json.dumps(str(v))


def flag_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_config_flags(p: argparse.ArgumentParser, cls: type[StudyConfig], parts_help: str, defaults_parts: str) -> None:
    """One flag per config field, from the field's own metadata; defaults shown by argparse."""
    for f in dataclasses.fields(cls):
        if f.name == "parts":
            p.add_argument("--parts", default=defaults_parts, help=parts_help.replace("%", "%%"))
            continue
        meta = f.metadata
        if "help" not in meta:
            continue
        names = [flag_name(f), *meta["aliases"]]
        default = f.default
        if meta["kind"] is bool:
            if meta["negate"]:
                p.add_argument(*names, dest=f.name, action="store_false", help=meta["help"])
            else:
                p.add_argument(*names, dest=f.name, action="store_true", help=meta["help"])
            continue
        kw: dict[str, Any] = {
            "dest": f.name,
            "help": meta["help"] + (" (default: %(default)s)" if default is not None else ""),
        }
        if meta["choices"]:
            kw |= {"choices": meta["choices"], "type": type(meta["choices"][0])}
        elif meta["kind"] in (int, float) and (meta["low"] is not None or meta["many"]):
            kw["type"] = bounded(names[0], meta["kind"], meta["low"], meta["strict"], meta["many"], meta["high"])
        elif meta["kind"] is not None:
            kw["type"] = meta["kind"]
        if meta["many"] and default is not None:
            default = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
        p.add_argument(*names, default=default, **kw)


def config_defaults_from_file(path: Path, cls: type[StudyConfig], study: str) -> dict[str, Any]:
    """The settings in a ``config.toml`` as argparse defaults (strings go through the flags' validators)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        values = tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise UserError(f"cannot read config file {path} ({e.strerror or e})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"config file {path} is not valid TOML ({e})") from None
    values.pop("aelab_version", None)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in NOT_IN_CONFIG_FILE}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise UserError(f"config file {path}: unknown key(s) {', '.join(unknown)} for `aelab {study}`")
    out: dict[str, Any] = {}
    for name, v in values.items():
        meta = fields[name].metadata
        choices = meta.get("choices")
        kind = meta.get("kind") or (type(choices[0]) if choices else None)  # --latent-size 8|16: a whole number
        if name == "parts":
            if not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
                raise UserError(f"config file {path}: parts must be a list of part names, got {v!r}")
            out[name] = ",".join(v)
        elif kind is bool:
            if not isinstance(v, bool):
                raise UserError(f"config file {path}: {name} must be true or false, got {v!r}")
            out[name] = v
        elif meta.get("many"):
            if not isinstance(v, list) or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in v):
                raise UserError(f"config file {path}: {name} must be a list of numbers, got {v!r}")
            out[name] = ",".join(str(x) for x in v)
        elif kind in (int, float):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)):
                raise UserError(
                    f"config file {path}: {name} must be {'a whole number' if kind is int else 'a number'}, got {v!r}"
                )
            out[name] = str(v)
        else:
            if not isinstance(v, str):
                raise UserError(f"config file {path}: {name} must be a string, got {v!r}")
            out[name] = v
    return out


def config_from_args(cls: type[StudyConfig], args: argparse.Namespace, parts: tuple[str, ...]) -> StudyConfig:
    """The config of parsed flags, checked as a whole (what one flag's validator cannot see: the device
    against ``--jobs`` and torchrun)."""
    from aelab.runtime import check_device_use

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    values["parts"] = parts
    cfg = cls(**values)
    check_device_use(cfg.device, cfg.jobs)
    return cfg


class _RaisingParser(argparse.ArgumentParser):
    """A study's flags for Python callers: a mistake raises :class:`UserError` with argparse's own line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(message)


def settings_argv(cls: type[StudyConfig], study: str, settings: dict[str, Any]) -> list[str]:
    """Python keyword settings (the config's field names) as the command line that says the same.

    ``None`` leaves a setting at its default; booleans become their flag or nothing; lists become
    comma-separated values. Every value then goes through the flags' own validators, so a Python caller
    and the command line get the same checks and the same messages.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    argv: list[str] = []
    for name, value in settings.items():
        f = fields.get(name)
        if f is None or (name != "parts" and "help" not in f.metadata):
            known = ", ".join(n for n, g in fields.items() if n == "parts" or "help" in g.metadata)
            raise UserError(f"unknown setting {name!r} for `aelab {study}`; the settings are: {known}")
        if value is None:
            continue
        if name == "parts":
            names = [value] if isinstance(value, str) else list(value)
            if not all(isinstance(p, str) for p in names):
                raise UserError(f"parts must be part names, got {value!r}")
            argv.append(f"--parts={','.join(names)}")
            continue
        meta, flag = f.metadata, flag_name(f)
        if meta["kind"] is bool:
            if not isinstance(value, bool):
                raise UserError(f"{name} must be True or False, got {value!r}")
            if value != f.default:
                argv.append(flag)
            continue
        if meta["many"] and isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        elif meta["kind"] is Path and isinstance(value, (str, Path)):
            value = Path(value).expanduser()  # what a shell does to ~ on the command line
        argv.append(f"{flag}={value}")
    return argv


def config_from_settings(
    cls: type[StudyConfig],
    registry: Any,
    study: str,
    settings: dict[str, Any],
    defaults: dict[str, Any] | None = None,
) -> StudyConfig:
    """The config of Python keyword settings, through the same flags, validators and checks as the command
    line (:func:`add_config_flags`, :func:`config_from_args`); a mistake is a :class:`UserError` whose text
    is the line ``aelab STUDY`` prints after ``aelab: error:``. ``defaults``: a ``config.toml``'s settings
    (:func:`config_defaults_from_file`), which replace the built-in defaults as ``--config`` does."""
    parser = _RaisingParser(prog=f"aelab {study}", add_help=False)
    add_config_flags(parser, cls, registry.help(), ",".join(registry.defaults))
    if defaults:
        parser.set_defaults(**defaults)
    args = parser.parse_args(settings_argv(cls, study, settings))
    return config_from_args(cls, args, registry.parse(args.parts))
