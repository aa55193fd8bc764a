"""Models that can be rebuilt from a run folder: a class name and JSON constructor arguments.

A study makes its models with :func:`build`, which remembers how each was made (``model.aelab_spec``);
:class:`~aelab.studies.base.Session` writes those specs to ``checkpoints/models.json``, and
:func:`from_spec` turns a spec back into an untrained model whose checkpoint then loads. Nested
modules (the noisy channel of a conv autoencoder) are specs inside specs.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from aelab.errors import UserError
from aelab.models.channel import AWGNChannel
from aelab.models.conv import ConvAutoencoder, MnistConvAutoencoder
from aelab.models.jscc import JSCCAutoencoder
from aelab.models.mlp import MLPAutoencoder
from aelab.models.vae import VAE

MODELS_FILE = "models.json"  # in a run's checkpoints/ folder, written by Session.train
CLASSES: dict[str, type[nn.Module]] = {
    c.__name__: c for c in (MLPAutoencoder, MnistConvAutoencoder, ConvAutoencoder, JSCCAutoencoder, AWGNChannel, VAE)
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, nn.Module):
        spec = getattr(value, "aelab_spec", None)
        if spec is None:
            raise ValueError(f"{type(value).__name__} was not made with aelab.models.registry.build")
        return spec
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"constructor argument {value!r} cannot be written as JSON")


def build(cls: type[nn.Module], **kwargs: Any) -> nn.Module:
    """``cls(**kwargs)``, remembering the class and arguments so the model can be rebuilt later."""
    if CLASSES.get(cls.__name__) is not cls:
        raise ValueError(f"{cls.__name__} is not a registered aelab model (add it to registry.CLASSES)")
    model = cls(**kwargs)
    model.aelab_spec = {"class": cls.__name__, "kwargs": {k: _jsonable(v) for k, v in kwargs.items()}}
    return model


def spec_of(model: nn.Module) -> dict | None:
    return getattr(model, "aelab_spec", None)


def _is_spec(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"class", "kwargs"}


def from_spec(spec: dict) -> nn.Module:
    """Rebuild an (untrained) model from its spec; an unknown class is a user error."""
    if not _is_spec(spec):
        raise UserError(f"not a model description: {str(spec)[:80]}")
    cls = CLASSES.get(spec["class"])
    if cls is None:
        raise UserError(f"unknown model class {spec['class']!r} (known: {', '.join(sorted(CLASSES))})")
    kwargs = {k: from_spec(v) if _is_spec(v) else v for k, v in spec["kwargs"].items()}
    try:
        return build(cls, **kwargs)
    except (TypeError, ValueError) as e:
        raise UserError(f"cannot rebuild {spec['class']} from {spec['kwargs']} ({e})") from None
