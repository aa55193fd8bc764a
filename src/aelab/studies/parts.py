"""A study is a list of parts; each part is registered once and becomes a report section.

A part is two functions of the study's run context: ``compute`` returns a small result (numbers and
images: no matplotlib, no Markdown) and ``write`` turns that result into metrics, figures and prose.
``--parts`` choices, the parts' section numbers and the ``--help`` text all come from the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from aelab.errors import UserError


@dataclass(frozen=True)
class Part:
    """One part: ``name`` for ``--parts``, ``title`` for the help, ``sections`` it writes (numbered).

    ``models``: the recipes the part will ask ``run.model`` for. A hint, not a contract (models stay
    lazy): with ``--jobs`` the run trains those of all selected parts side by side before the parts run.
    """

    name: str
    title: str
    compute: Callable[[Any], Any]
    write: Callable[[Any, Any], None]
    default: bool = True
    sections: int = 1
    models: tuple[str, ...] = ()


class Registry:
    """The ordered parts of one study."""

    def __init__(self, parts: Sequence[Part]) -> None:
        self.parts = tuple(parts)
        self._by_name = {p.name: p for p in self.parts}
        if len(self._by_name) != len(self.parts):
            raise ValueError("two parts share a name")

    def __iter__(self) -> Iterator[Part]:
        return iter(self.parts)

    def __getitem__(self, name: str) -> Part:
        return self._by_name[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts)

    @property
    def defaults(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts if p.default)

    def number(self, name: str) -> int:
        """The section number of the part's first section: fixed by the registry, not by what runs."""
        n = 1
        for p in self.parts:
            if p.name == name:
                return n
            n += p.sections
        raise KeyError(name)

    def help(self) -> str:
        listed = "; ".join(f"{p.name}: {p.title}" + ("" if p.default else " (opt-in)") for p in self.parts)
        return f"comma-separated parts to run (default: {','.join(self.defaults)}). {listed}"

    def parse(self, text: str | Sequence[str]) -> tuple[str, ...]:
        """``"ae,dae"`` -> ``("ae", "dae")``, in the study's own order; unknown names are a user error."""
        return parse_parts(text, self.names)


def parse_parts(text: str | Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    unknown = [p for p in parts if p not in known]
    if unknown or not parts:
        raise UserError(f"unknown part(s) {', '.join(unknown) or '(none given)'}; choose from {','.join(known)}")
    return tuple(p for p in known if p in parts)
