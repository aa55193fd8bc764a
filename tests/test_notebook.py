"""``docs/lab.ipynb``, the lab as a tutorial: executed on a real Jupyter kernel, every cell, numbers checked.

The notebook is stored without outputs and runs as stored (quick settings, the built-in MNIST digits);
the test only points ``DOGS_DATA`` at a small photo folder, in a cell after the one tagged
``parameters`` (papermill's convention, so a reader's own parameters go in the same way). Then every
number the notebook prints is checked against the run folders it wrote, and against what each lab
requirement is about (a denoiser denoises, more channel noise costs PSNR, a reloaded model gives the
report's number).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

import aelab

from conftest import write_dog_photos

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "lab.ipynb"
N_PHOTOS = 128  # the notebook's quick limit


def test_the_notebook_is_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    text = "\n".join(c.source for c in nb.cells)
    assert "On Kaggle or Colab" in text and "pip install" in text and "GPU" in text


def _outputs(cell) -> tuple[str, list[str]]:
    """A cell's printed text, and the Markdown it displayed."""
    printed, markdown = [], []
    for out in cell.get("outputs", []):
        if out.output_type == "stream" and out.name == "stdout":
            printed.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            if "text/markdown" in out.data:
                markdown.append(out.data["text/markdown"])
            elif "text/plain" in out.data:
                printed.append(out.data["text/plain"])
    return "".join(printed), markdown


def _seconds(cell) -> float:
    """How long an executed cell ran (nbclient records when the kernel took it and when it replied)."""
    from datetime import datetime

    timing = cell.get("metadata", {}).get("execution", {})
    if "iopub.execute_input" not in timing or "shell.execute_reply" not in timing:
        return 0.0
    start, end = (
        datetime.fromisoformat(timing[k].replace("Z", "+00:00")) for k in ("iopub.execute_input", "shell.execute_reply")
    )
    return (end - start).total_seconds()


def _number(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not in the notebook's output:\n{text[:2000]}"
    return float(m.group(1).replace(",", ""))


@pytest.mark.slow
def test_the_lab_notebook_runs_every_cell_and_shows_the_runs_numbers(tmp_path: Path, monkeypatch) -> None:
    photos = write_dog_photos(tmp_path / "photos", N_PHOTOS, 20, (64, 64))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(f"DOGS_DATA = {str(photos)!r}"))
    src = str(Path(aelab.__file__).resolve().parents[1])  # the kernel imports the aelab under test
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p))

    started = time.perf_counter()
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails
    print(f"notebook executed in {time.perf_counter() - started:.0f} s; the slowest cells:")
    for cell in sorted(nb.cells, key=_seconds, reverse=True)[:4]:
        print(f"  {_seconds(cell):5.1f} s  {cell.source.splitlines()[0][:60]}")

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    printed = "\n".join(_outputs(c)[0] for c in code)
    shown = [md for c in code for md in _outputs(c)[1]]

    mnist = json.loads((tmp_path / "runs/mnist/metrics.json").read_text())
    dogs = json.loads((tmp_path / "runs/dogs/metrics.json").read_text())

    # every section shown is the report's own, figures embedded (a shared notebook keeps them)
    for heading in ("## 1. Autoencoder", "## 2. Denoising", "## 3. Decoding a uniform grid", "## 4. L2",
                    "## 1. Conv autoencoder", "## 2.", "## 3. Sampling a Gaussian", "## 4. Perturbing", "## 5.",
                    "## Training curves"):  # fmt: skip
        assert any(md.startswith(heading) for md in shown), heading
    assert all("data:image/png;base64," in md and "](figures/" not in md for md in shown)

    # experiment one: the numbers printed are the run's, and each requirement shows what it should
    assert "data: 1,024 training and 256 test digits from built-in sample" in printed
    assert _number(r"test PSNR ([\d.]+) dB, 5-NN", printed) == round(mnist["ae2d"]["test_psnr"], 2)
    for size in (2, 32):
        noisy = _number(rf"DAE, bottleneck {size}: noisy input ([\d.]+) dB", printed)
        denoised = _number(rf"DAE, bottleneck {size}: noisy input [\d.]+ dB, denoised ([\d.]+) dB", printed)
        assert denoised == round(mnist["dae"][f"bottleneck_{size}"]["denoised_psnr"], 2)
        assert denoised > noisy + 0.5  # the denoiser denoises
    inside = _number(r"inside the sampled box: ([\d.]+)%", printed)
    assert 0 < inside <= 100 and inside == round(100 * mnist["manifold"]["test_codes_inside_grid"], 1)
    assert "decoded point (0, 0): image (1, 28, 28)" in printed and "decoded line: 9 images" in printed
    assert _number(r"penalty: test PSNR ([\d.]+) dB", printed) == round(mnist["l2"]["penalty"]["test_psnr"], 2)

    # experiment two
    assert "code: 16 x 8 x 8 numbers per photo" in printed and dogs["arch"] == "lab"
    ae_psnr = _number(r"plain AE: test PSNR ([\d.]+) dB", printed)
    assert ae_psnr == round(dogs["ae"]["test_psnr"], 2)
    table = next(md for md in shown if md.startswith("## 1. Conv autoencoder"))
    assert f"| {ae_psnr:.2f} |" in table and f"{dogs['ae']['test_psnr']:.4f}" not in table  # dB to 0.01
    assert len(dogs["samples"]["psnr"]) == 9  # the lab's nine photos
    moves = [_number(rf"noise {s} x the codes' std: PSNR to the clean reconstruction ([\d.]+) dB", printed)
             for s in ("0.1", "0.25", "0.5", "1")]  # fmt: skip
    assert moves == sorted(moves, reverse=True)  # the larger the perturbation, the further the image moves
    for v in ("0.05", "0.1", "0.15"):
        psnr = _number(rf"variance {v} \(SNR [\d.]+ dB\): test PSNR ([\d.]+) dB", printed)
        assert psnr == round(dogs["noisy"][v]["test_psnr"], 2)
        measured = _number(rf"variance {v} .*measured noise variance ([\d.]+)", printed)
        assert measured == pytest.approx(float(v), rel=0.1)  # the channel adds the noise the lab asks for

    # the reopened run's model gives the report's number
    reloaded = _number(r"reloaded plain AE: ([\d.]+) dB", printed)
    assert reloaded == _number(r"the report: ([\d.]+) dB", printed) == ae_psnr
