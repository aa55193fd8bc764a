"""What a notebook shows of a run: ``report.md`` with its figures inline, whole or one section at a time.

Jupyter renders an object's ``_repr_markdown_``. The figures go in as base64 ``data:`` URIs rather
than paths, so a notebook saved with its outputs still shows them once it is shared: a path would
point into a run folder the reader does not have. Links to the run's other files (the latent
explorer) are rewritten relative to the kernel's working folder, which is where Jupyter resolves them.
"""

from __future__ import annotations

import base64
import os
import re
import sys
from pathlib import Path

# ![caption](figures/name.png); a caption may hold brackets of its own ("on the [0, 1] scale")
FIGURE = re.compile(r"!\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\((figures/[^)\s]+\.png)\)")
LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([\w./-]+\.html)\)")  # a relative link to a page in the run folder


def in_kernel() -> bool:
    """Whether this process is a Jupyter kernel's: a running IPython shell with a kernel attached.

    ``ipykernel`` being imported is not enough: test runners and the notebook tooling import it (and
    ipywidgets) in plain processes whose stderr is a log, not a notebook.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return getattr(shell, "kernel", None) is not None


def figure_names(markdown: str) -> list[str]:
    """The figures a report shows, as ``figures/<name>.png`` paths, in reading order."""
    return list(dict.fromkeys(m.group(2) for m in FIGURE.finditer(markdown)))


def inline_figures(markdown: str, folder: Path) -> str:
    """``markdown`` with each ``figures/*.png`` of ``folder`` embedded as a data URI (a missing one stays a path)."""

    def embed(m: re.Match) -> str:
        path = folder / m.group(2)
        if not path.is_file():
            return m.group(0)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f"![{m.group(1)}](data:image/png;base64,{data})"

    def relink(m: re.Match) -> str:
        target = folder / m.group(2)
        try:
            where = os.path.relpath(target, Path.cwd())
        except ValueError:  # another drive (Windows)
            where = str(target)
        return f"[{m.group(1)}]({Path(where).as_posix()})"

    return LINK.sub(relink, FIGURE.sub(embed, markdown))


def split_sections(markdown: str) -> list[tuple[str, str]]:
    """``(title, text)`` of every ``## `` section, in order; ``text`` starts with the section's heading."""
    out: list[tuple[str, list[str]]] = []
    for line in markdown.splitlines():
        if line.startswith("## "):
            out.append((line[3:].strip(), [line]))
        elif out:
            out[-1][1].append(line)
    return [(title, "\n".join(lines).strip() + "\n") for title, lines in out]


class Markdown:
    """Markdown text that Jupyter renders (``_repr_markdown_``) and ``print`` shows as it is."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        first = next((line for line in self.text.splitlines() if line.strip()), "")
        return f"<Markdown: {first.lstrip('#').strip()!r}, {len(self.text):,} characters>"
