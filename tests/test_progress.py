"""What a user sees while models train: live lines where a terminal shows them, plain whole lines elsewhere."""

from __future__ import annotations

import io
import re

import pytest

from aelab import progress


def _record(epoch: int) -> dict:
    return {"epoch": epoch, "train_loss": 0.25 / epoch, "test_loss": 0.3 / epoch, "seconds": 1.5}


def _feed(board: progress.Board) -> None:
    """Two models training at once, their reports interleaved as two workers send them."""
    board.start("ae2d", 0, 2)
    board.start("mse_loss", 0, 2)
    for epoch in (1, 2):
        board.epoch("ae2d", _record(epoch), 2)
        board.epoch("mse_loss", _record(epoch), 2)
    board.end("ae2d")
    board.end("mse_loss")


def test_board_prints_one_whole_line_per_epoch_where_nothing_is_live(monkeypatch, capsys):
    monkeypatch.setattr(progress, "live", lambda: False)
    _feed(progress.Board())
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        progress.epoch_line(name, _record(epoch), 2) for epoch in (1, 2) for name in ("ae2d", "mse_loss")
    ]
    assert re.fullmatch(r"\[ae2d\] epoch 1/2  train 0\.25  test 0\.3  1\.5s", out.splitlines()[0])
    assert err == ""


def test_board_keeps_one_live_line_per_model_and_a_summary_when_it_ends(monkeypatch, capsys):
    monkeypatch.setattr(progress, "live", lambda: True)
    screen = io.StringIO()
    monkeypatch.setattr(progress.tqdm, "__init__", _into(progress.tqdm.__init__, screen))
    board = progress.Board()
    board.start("ae2d", 0, 2)
    board.start("mse_loss", 1, 2)  # resumed after one epoch
    assert sorted(board.bars) == ["ae2d", "mse_loss"]
    assert len({bar.pos for bar in board.bars.values()}) == 2  # two lines, one per model
    board.epoch("ae2d", _record(1), 2)
    board.epoch("ae2d", _record(2), 2)
    board.end("ae2d")
    assert list(board.bars) == ["mse_loss"]
    board.close()
    out = capsys.readouterr().out
    assert out.splitlines() == ["[ae2d] trained: 2 epochs, train 0.125  test 0.15  3.0s"]
    assert "ae2d" in screen.getvalue() and "mse_loss" in screen.getvalue()


def _into(init, screen: io.StringIO):
    def patched(self, *args, **kwargs):
        kwargs.setdefault("file", screen)
        init(self, *args, **kwargs)

    return patched


@pytest.mark.parametrize("is_live", [False, True])
def test_bar_writes_each_epoch_as_a_line(monkeypatch, capsys, is_live):
    monkeypatch.setattr(progress, "live", lambda: is_live)
    bar = progress.Bar()
    bar.start("ae2d", 0, 1)
    bar.epoch("ae2d", _record(1), 1)
    bar.end("ae2d")
    assert capsys.readouterr().out.splitlines() == [progress.epoch_line("ae2d", _record(1), 1)]


def test_nothing_is_live_in_a_plain_process_that_imported_the_notebook_stack(capsys):
    """Test runners and notebook tooling import ipykernel and ipywidgets; that is not a notebook to draw in."""
    pytest.importorskip("ipykernel")
    import ipykernel.kernelapp  # noqa: F401

    pytest.importorskip("ipywidgets")

    from aelab.notebook import in_kernel

    assert not in_kernel()
    assert not progress.live()  # capsys: stderr is not a terminal either
