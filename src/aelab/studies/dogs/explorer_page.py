"""``explorer.html`` for a dogs run: held-out photos through every model the run trained, under an SNR slider.

A writer beside the report: it reads the run's models (training nothing new) and hands plain arrays
to :mod:`aelab.explorer`. The slider covers the SNRs the run evaluated: the noisy part's curve, and
0..25 dB when the channel part ran.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aelab.evaluate import PSNR_CAP, psnr
from aelab.explorer import ChannelModel, dogs_page, write_page
from aelab.models.channel import snr_db, variance_at
from aelab.runtime import get_dist
from aelab.studies.dogs.channel import SNRS, with_channel
from aelab.studies.dogs.noisy import EVAL_VARIANCES
from aelab.studies.dogs.recipes import var_key
from aelab.studies.dogs.sampling import gauss_samples

if TYPE_CHECKING:
    from aelab.studies.dogs.context import DogsRun

N_STRIP = 24


def _snrs(run: DogsRun) -> list[float]:
    variances = {*run.cfg.variances, *(() if run.cfg.quick else EVAL_VARIANCES)}
    if "channel" in run.cfg.parts:
        variances |= {variance_at(s) for s in SNRS}
    return sorted({round(snr_db(v), 2) for v in variances})


def channel_models(run: DogsRun, strip: slice) -> list[ChannelModel]:
    photos = run.x[strip]
    models = {"plain AE": with_channel(run.model("ae"))}
    for v in run.cfg.variances:
        name = f"noisy_var{var_key(v)}"
        if run.has_model(name):
            models[f"noisy var {var_key(v)}"] = run.model(name)
    out = []
    for label, model in models.items():
        images = run.data.test[strip]
        clean = run.outputs(model, images, noise=False)["x01"]
        at_snr = {}
        for snr in _snrs(run):
            x01 = run.outputs(model, images, noise=True, variance=variance_at(snr))["x01"]
            at_snr[snr] = (x01.numpy(), psnr(x01, photos, cap=PSNR_CAP).numpy())
        out.append(ChannelModel(label, clean.numpy(), at_snr))
    return out


def write_explorer(run: DogsRun) -> None:
    if not get_dist().is_main:
        return
    strip = slice(0, min(N_STRIP, len(run.data.test)))
    n = len(run.show)
    g = gauss_samples(run, "ae", run.train_codes, run.train_codes[:n])
    samples = {"Gaussian samples": g.drawn.numpy(), "blends (0.25 sample + 0.75 real code)": g.blended.numpy()}
    page = dogs_page(run.x[strip].numpy(), channel_models(run, strip), samples, "aelab latent explorer: dog photos")
    write_page(run.session.run.path / "explorer.html", page)
    run.report.text(
        "[Open the latent explorer](explorer.html): held-out photos through the plain AE and every noisy model, "
        "with an SNR slider over the channel SNRs this run evaluated (`aelab explore RUN_DIR` opens it)."
    )
