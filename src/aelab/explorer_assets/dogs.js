// The dogs explorer: held-out photos, every model's reconstruction under an SNR slider, samples.
// Reads the JSON blocks aelab.explorer writes; no network, no libraries. Image k of an atlas is
// the k-th W x H tile of its single row; canvases draw each image pixel as a SCALE x SCALE block.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const meta = JSON.parse($("aelab-meta").textContent);
  const models = Array.from(document.querySelectorAll("script.aelab-model"), (s) => JSON.parse(s.textContent));
  const [H, W] = meta.imageSize;
  const SCALE = Math.max(1, Math.floor(192 / Math.max(H, W)));
  const THUMB = Math.max(1, Math.floor(64 / Math.max(H, W)));
  const SAMPLE = Math.max(1, Math.floor(96 / Math.max(H, W)));
  const NOISE_FREE = meta.snrs.length; // the slider's last position

  let photo = 0;
  let snrIndex = NOISE_FREE;
  const imgs = { photos: null, clean: [], at: [], samples: [] };

  function loadImage(src) {
    const img = new Image();
    img.src = src;
    return img.decode().then(() => img);
  }
  function canvas(scale, cls) {
    const c = document.createElement("canvas");
    c.width = W * scale;
    c.height = H * scale;
    c.className = "pixels" + (cls ? " " + cls : "");
    return c;
  }
  function drawTile(target, img, k) {
    const t = target.getContext("2d");
    t.imageSmoothingEnabled = false;
    t.clearRect(0, 0, target.width, target.height);
    if (img) t.drawImage(img, k * W, 0, W, H, 0, 0, target.width, target.height);
  }
  function snrLabel(i) { return i === NOISE_FREE ? "no noise" : meta.snrs[i] + " dB"; }

  function card(id, name, psnrId) {
    const fig = document.createElement("figure");
    fig.className = "card";
    const c = canvas(SCALE);
    c.id = id;
    c.setAttribute("role", "img");
    const nm = document.createElement("div");
    nm.className = "name";
    nm.textContent = name;
    const ps = document.createElement("div");
    ps.className = "psnr";
    ps.id = psnrId;
    fig.append(c, nm, ps);
    return fig;
  }

  function render() {
    document.querySelectorAll("#strip button").forEach((b, i) => b.setAttribute("aria-pressed", String(i === photo)));
    $("snr-value").textContent = snrLabel(snrIndex);
    $("snr").setAttribute("aria-valuetext", snrLabel(snrIndex));
    const orig = $("original");
    drawTile(orig, imgs.photos, photo);
    orig.setAttribute("aria-label", "photo " + (photo + 1));
    models.forEach((m, k) => {
      const target = $("recon-" + k);
      const text = $("psnr-" + k);
      let img = null;
      let psnr = null;
      if (snrIndex === NOISE_FREE) {
        img = imgs.clean[k];
        psnr = m.cleanPsnr[photo];
      } else {
        const key = meta.snrKeys[snrIndex];
        if (m.atSnr[key]) {
          img = imgs.at[k][key];
          psnr = m.atSnr[key].psnr[photo];
        }
      }
      drawTile(target, img, photo);
      text.textContent = psnr === null ? "not evaluated at this SNR" : "PSNR " + psnr.toFixed(2) + " dB";
      target.setAttribute("aria-label", m.name + " reconstruction, " + snrLabel(snrIndex) + ", " + text.textContent);
    });
  }

  function build() {
    const strip = $("strip");
    for (let i = 0; i < meta.count; i++) {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.photo = i;
      b.setAttribute("aria-label", "photo " + (i + 1));
      b.setAttribute("aria-pressed", "false");
      const c = canvas(THUMB);
      drawTile(c, imgs.photos, i);
      b.appendChild(c);
      b.addEventListener("click", () => { photo = i; render(); });
      strip.appendChild(b);
    }
    const slider = $("snr");
    slider.max = String(NOISE_FREE);
    slider.value = String(snrIndex);
    slider.addEventListener("input", () => { snrIndex = Number(slider.value); render(); });
    const cards = $("cards");
    cards.appendChild(card("original", "photo", "psnr-original"));
    models.forEach((m, k) => cards.appendChild(card("recon-" + k, m.name, "psnr-" + k)));
    const samples = $("samples");
    meta.samples.forEach((row, r) => {
      const h = document.createElement("h2");
      h.textContent = row.label;
      h.style.marginTop = "1.25rem";
      const div = document.createElement("div");
      div.className = "row";
      div.id = "samples-" + r;
      for (let i = 0; i < row.count; i++) {
        const c = canvas(SAMPLE);
        drawTile(c, imgs.samples[r], i);
        div.appendChild(c);
      }
      samples.append(h, div);
    });
  }

  window.aelabExplorer = {
    ready: false,
    scale: SCALE,
    state: () => ({ photo, snrIndex, snr: snrIndex === NOISE_FREE ? null : meta.snrs[snrIndex], label: snrLabel(snrIndex) }),
  };

  const jobs = [loadImage(meta.photos).then((i) => { imgs.photos = i; })];
  models.forEach((m, k) => {
    imgs.at[k] = {};
    jobs.push(loadImage(m.clean).then((i) => { imgs.clean[k] = i; }));
    for (const key of Object.keys(m.atSnr)) jobs.push(loadImage(m.atSnr[key].img).then((i) => { imgs.at[k][key] = i; }));
  });
  meta.samples.forEach((row, r) => jobs.push(loadImage(row.img).then((i) => { imgs.samples[r] = i; })));
  Promise.all(jobs)
    .then(() => {
      build();
      render();
      $("status").textContent = meta.count + " photos, " + models.length + " model(s), SNRs " +
        (meta.snrs.length ? meta.snrs[0] + " to " + meta.snrs[meta.snrs.length - 1] + " dB" : "none") + ".";
      window.aelabExplorer.ready = true;
      document.body.dataset.ready = "true";
    })
    .catch((err) => {
      $("status").textContent = "Could not load the page's images: " + err;
      $("status").className = "error";
    });
})();
