// The MNIST latent explorer. Reads the JSON blocks aelab.explorer writes; no network, no libraries.
//
// Screen mapping (documented for tests and for anyone reading the page): the scatter canvas is
// SIZE x SIZE CSS pixels; its plot box starts at (PLOT.left, PLOT.top) and is PLOT.width x
// PLOT.height; code z1 runs left to right over [box[0], box[1]] and z2 bottom to top over
// [box[2], box[3]]. The canvas carries the same numbers as data- attributes, and
// aelabExplorer.toScreen / fromScreen convert. The decoder view draws each image pixel as a
// SCALE x SCALE block of gray level round(255 * value).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const meta = JSON.parse($("aelab-meta").textContent);
  const models = Array.from(document.querySelectorAll("script.aelab-model"), (s) => JSON.parse(s.textContent));
  const [H, W] = meta.imageSize;
  const P = H * W;
  const SIZE = 520;
  const PLOT = { left: 56, top: 14, width: SIZE - 56 - 14, height: SIZE - 14 - 44 };
  const SCALE = Math.max(1, Math.floor(280 / Math.max(H, W)));
  const PREVIEW = Math.max(1, Math.floor(112 / Math.max(H, W)));
  const HOVER_PX = 6;
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d",
    "#31a354", "#756bb1", "#636363"];

  const scatter = $("scatter");
  const view = $("view");
  const ctx = scatter.getContext("2d");
  const dpr = window.devicePixelRatio || 1;
  scatter.style.width = SIZE + "px";
  scatter.style.height = SIZE + "px";
  scatter.width = Math.round(SIZE * dpr);
  scatter.height = Math.round(SIZE * dpr);
  view.width = W * SCALE;
  view.height = H * SCALE;
  for (const c of [$("point-image"), $("point-recon")]) {
    c.width = W * PREVIEW;
    c.height = H * PREVIEW;
  }

  let current = 0;
  let probe = null; // [z1, z2] under the pointer (or moved by the keys)
  let pinned = null; // [z1, z2] or null
  let hovered = -1; // position in the shown points, or -1
  let lastScreen = null; // {x, y} of the last pointer position inside the plot
  const grids = []; // per model: Uint8Array, node (j * grid + i) at z1 step i, z2 step j holds P pixels
  const bases = []; // per model: the drawn scatter without markers
  let imagePixels = null;
  const reconPixels = []; // per model; point n's reconstruction is row reconRows[n]

  function box() { return models[current].box; }
  function toScreen(z1, z2) {
    const b = box();
    return { x: PLOT.left + ((z1 - b[0]) / (b[1] - b[0])) * PLOT.width,
             y: PLOT.top + ((b[3] - z2) / (b[3] - b[2])) * PLOT.height };
  }
  function fromScreen(x, y) {
    const b = box();
    return [b[0] + ((x - PLOT.left) / PLOT.width) * (b[1] - b[0]), b[3] - ((y - PLOT.top) / PLOT.height) * (b[3] - b[2])];
  }
  function inPlot(x, y) {
    return x >= PLOT.left && x <= PLOT.left + PLOT.width && y >= PLOT.top && y <= PLOT.top + PLOT.height;
  }

  function loadImage(src) {
    const img = new Image();
    img.src = src;
    return img.decode().then(() => img);
  }
  // Every atlas holds one image per PNG row (H * W gray pixels), so its red channel read row by
  // row is the images one after another: image k is pixels [k * P, (k + 1) * P).
  function pixelRows(img) {
    const c = document.createElement("canvas");
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext("2d", { willReadFrequently: true });
    g.drawImage(img, 0, 0);
    const rgba = g.getImageData(0, 0, c.width, c.height).data;
    const red = new Uint8Array(c.width * c.height);
    for (let p = 0; p < red.length; p++) red[p] = rgba[4 * p];
    return red;
  }

  // Bilinear interpolation between the four grid nodes around z: gray levels 0..255 (floats).
  function decodeGray(k, z1, z2) {
    const m = models[k];
    const G = m.grid;
    const g = grids[k];
    const b = m.box;
    const u = Math.min(G - 1, Math.max(0, ((z1 - b[0]) / (b[1] - b[0])) * (G - 1)));
    const v = Math.min(G - 1, Math.max(0, ((z2 - b[2]) / (b[3] - b[2])) * (G - 1)));
    const i0 = Math.min(Math.floor(u), G - 2);
    const j0 = Math.min(Math.floor(v), G - 2);
    const fu = u - i0;
    const fv = v - j0;
    const a = (j0 * G + i0) * P;
    const bb = a + P;
    const c = a + G * P;
    const d = c + P;
    const out = new Float32Array(P);
    const w00 = (1 - fu) * (1 - fv), w10 = fu * (1 - fv), w01 = (1 - fu) * fv, w11 = fu * fv;
    for (let p = 0; p < P; p++) out[p] = w00 * g[a + p] + w10 * g[bb + p] + w01 * g[c + p] + w11 * g[d + p];
    return out;
  }

  const small = document.createElement("canvas");
  small.width = W;
  small.height = H;
  const smallCtx = small.getContext("2d");
  function drawGray(target, gray) {
    const im = smallCtx.createImageData(W, H);
    for (let p = 0; p < P; p++) {
      const v = Math.round(gray[p]);
      im.data[4 * p] = v;
      im.data[4 * p + 1] = v;
      im.data[4 * p + 2] = v;
      im.data[4 * p + 3] = 255;
    }
    smallCtx.putImageData(im, 0, 0);
    const t = target.getContext("2d");
    t.imageSmoothingEnabled = false;
    t.drawImage(small, 0, 0, target.width, target.height);
  }
  function drawRow(target, pixels, k) { drawGray(target, pixels.subarray(k * P, (k + 1) * P)); }

  function niceTicks(lo, hi) {
    const raw = (hi - lo) / 5;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => raw <= s) || 10 * mag;
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * step; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
    return { ticks, digits: Math.max(0, -Math.floor(Math.log10(step))) };
  }

  function drawBase(k) {
    const c = document.createElement("canvas");
    c.width = scatter.width;
    c.height = scatter.height;
    const g = c.getContext("2d");
    g.scale(dpr, dpr);
    g.fillStyle = "#fff";
    g.fillRect(0, 0, SIZE, SIZE);
    const saved = current;
    current = k;
    const b = box();
    g.strokeStyle = "#d1d9e0";
    g.fillStyle = "#59636e";
    g.font = "11px system-ui, sans-serif";
    g.lineWidth = 1;
    const tx = niceTicks(b[0], b[1]);
    g.textAlign = "center";
    g.textBaseline = "top";
    for (const t of tx.ticks) {
      const x = toScreen(t, b[2]).x;
      g.beginPath(); g.moveTo(x, PLOT.top); g.lineTo(x, PLOT.top + PLOT.height); g.stroke();
      g.fillText(t.toFixed(tx.digits), x, PLOT.top + PLOT.height + 5);
    }
    const ty = niceTicks(b[2], b[3]);
    g.textAlign = "right";
    g.textBaseline = "middle";
    for (const t of ty.ticks) {
      const y = toScreen(b[0], t).y;
      g.beginPath(); g.moveTo(PLOT.left, y); g.lineTo(PLOT.left + PLOT.width, y); g.stroke();
      g.fillText(t.toFixed(ty.digits), PLOT.left - 6, y);
    }
    g.fillStyle = "#1f2328";
    g.font = "12px system-ui, sans-serif";
    g.textAlign = "center";
    g.textBaseline = "bottom";
    g.fillText("z1", PLOT.left + PLOT.width / 2, SIZE - 2);
    g.save();
    g.translate(12, PLOT.top + PLOT.height / 2);
    g.rotate(-Math.PI / 2);
    g.textBaseline = "middle";
    g.fillText("z2", 0, 0);
    g.restore();
    g.strokeStyle = "#8c959f";
    g.strokeRect(PLOT.left, PLOT.top, PLOT.width, PLOT.height);
    const codes = models[k].codes;
    g.globalAlpha = 0.75;
    for (let n = 0; n < meta.labels.length; n++) {
      const s = toScreen(codes[2 * n], codes[2 * n + 1]);
      g.fillStyle = PALETTE[meta.labels[n] % PALETTE.length];
      g.beginPath();
      g.arc(s.x, s.y, 2.6, 0, 2 * Math.PI);
      g.fill();
    }
    g.globalAlpha = 1;
    current = saved;
    return c;
  }

  function nearestPoint(x, y) {
    const codes = models[current].codes;
    let best = -1;
    let bestD = HOVER_PX * HOVER_PX;
    for (let n = 0; n < meta.labels.length; n++) {
      const s = toScreen(codes[2 * n], codes[2 * n + 1]);
      const d = (s.x - x) * (s.x - x) + (s.y - y) * (s.y - y);
      if (d <= bestD) { bestD = d; best = n; }
    }
    return best;
  }

  function fmt(v) { return (v >= 0 ? " " : "") + v.toFixed(3); }
  function shownZ() { return pinned || probe; }

  function render() {
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(bases[current], 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const codes = models[current].codes;
    if (hovered >= 0) {
      const s = toScreen(codes[2 * hovered], codes[2 * hovered + 1]);
      ctx.strokeStyle = "#1f2328";
      ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(s.x, s.y, 5.5, 0, 2 * Math.PI); ctx.stroke();
    }
    if (probe && !pinned) {
      const s = toScreen(probe[0], probe[1]);
      ctx.strokeStyle = "rgba(31,35,40,.55)";
      ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(s.x - 7, s.y); ctx.lineTo(s.x + 7, s.y); ctx.moveTo(s.x, s.y - 7); ctx.lineTo(s.x, s.y + 7); ctx.stroke();
    }
    if (pinned) {
      const s = toScreen(pinned[0], pinned[1]);
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 4;
      ctx.beginPath(); ctx.arc(s.x, s.y, 8, 0, 2 * Math.PI); ctx.stroke();
      ctx.strokeStyle = "#cf222e";
      ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(s.x, s.y, 8, 0, 2 * Math.PI); ctx.stroke();
      ctx.beginPath(); ctx.moveTo(s.x - 12, s.y); ctx.lineTo(s.x + 12, s.y); ctx.moveTo(s.x, s.y - 12); ctx.lineTo(s.x, s.y + 12); ctx.stroke();
    }
    const z = shownZ();
    if (z) {
      drawGray(view, decodeGray(current, z[0], z[1]));
      $("readout").textContent = "z = (" + fmt(z[0]) + "," + fmt(z[1]) + ")" + (pinned ? "  pinned" : "");
    }
    $("unpin").disabled = !pinned;
    if (hovered >= 0) {
      drawRow($("point-image"), imagePixels, hovered);
      drawRow($("point-recon"), reconPixels[current], models[current].reconRows[hovered]);
      $("point-caption").textContent = "test image #" + meta.index[hovered] + ", class " +
        meta.classNames[meta.labels[hovered]] + ", code (" + fmt(codes[2 * hovered]) + "," + fmt(codes[2 * hovered + 1]) + ")";
    }
  }

  function setDataAttributes() {
    const b = box();
    const d = scatter.dataset;
    d.plotLeft = PLOT.left; d.plotTop = PLOT.top; d.plotWidth = PLOT.width; d.plotHeight = PLOT.height;
    d.z1Min = b[0]; d.z1Max = b[1]; d.z2Min = b[2]; d.z2Max = b[3];
    d.model = current;
  }

  function select(k) {
    current = k;
    pinned = null;
    hovered = -1;
    const b = box();
    probe = lastScreen ? fromScreen(lastScreen.x, lastScreen.y) : [(b[0] + b[1]) / 2, (b[2] + b[3]) / 2];
    if (lastScreen) hovered = nearestPoint(lastScreen.x, lastScreen.y);
    document.querySelectorAll("#model-switch button").forEach((btn, i) => btn.setAttribute("aria-pressed", String(i === k)));
    $("plane-title").textContent = "Test codes: " + models[k].name;
    setDataAttributes();
    render();
  }

  function pointerXY(e) {
    const r = scatter.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  function onMove(e) {
    const { x, y } = pointerXY(e);
    if (!inPlot(x, y)) { hovered = -1; render(); return; }
    lastScreen = { x, y };
    probe = fromScreen(x, y);
    hovered = nearestPoint(x, y);
    render();
  }

  function togglePin(z) {
    pinned = pinned ? null : z.slice();
    if (!pinned) probe = z.slice();
    render();
  }

  function onKey(e) {
    const b = box();
    const step = (e.shiftKey ? 0.05 : 0.01);
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    if (moves[e.key]) {
      e.preventDefault();
      const z = probe || [(b[0] + b[1]) / 2, (b[2] + b[3]) / 2];
      probe = [Math.min(b[1], Math.max(b[0], z[0] + moves[e.key][0] * step * (b[1] - b[0]))),
               Math.min(b[3], Math.max(b[2], z[1] + moves[e.key][1] * step * (b[3] - b[2])))];
      const s = toScreen(probe[0], probe[1]);
      hovered = nearestPoint(s.x, s.y);
      render();
    } else if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      if (probe) togglePin(probe);
    } else if (e.key === "Escape" && pinned) {
      togglePin(pinned);
    }
  }

  function buildControls() {
    const sw = $("model-switch");
    models.forEach((m, k) => {
      const btn = document.createElement("button");
      btn.type = "button";
      btn.textContent = m.name;
      btn.setAttribute("aria-pressed", "false");
      btn.dataset.model = k;
      btn.addEventListener("click", () => select(k));
      sw.appendChild(btn);
    });
    const legend = $("legend");
    const present = new Set(meta.labels);
    meta.classNames.forEach((name, c) => {
      if (!present.has(c)) return;
      const li = document.createElement("li");
      const sw2 = document.createElement("span");
      sw2.className = "swatch";
      sw2.style.background = PALETTE[c % PALETTE.length];
      li.append(sw2, document.createTextNode(name));
      legend.appendChild(li);
    });
    scatter.addEventListener("pointermove", onMove);
    scatter.addEventListener("pointerleave", () => { hovered = -1; render(); });
    scatter.addEventListener("click", (e) => {
      const { x, y } = pointerXY(e);
      if (inPlot(x, y)) togglePin(fromScreen(x, y));
    });
    scatter.addEventListener("keydown", onKey);
    $("unpin").addEventListener("click", () => { if (pinned) togglePin(pinned); });
  }

  window.aelabExplorer = {
    ready: false,
    plot: PLOT,
    scale: SCALE,
    toScreen: (z1, z2) => toScreen(z1, z2),
    fromScreen: (x, y) => fromScreen(x, y),
    decodeAt: (z1, z2, k) => Array.from(decodeGray(k === undefined ? current : k, z1, z2), (v) => v / 255),
    select: (k) => select(k),
    state: () => ({ model: current, modelName: models[current].name, z: shownZ(), probe, pinned: pinned !== null,
                    hovered, hoveredIndex: hovered >= 0 ? meta.index[hovered] : null, box: box().slice() }),
  };

  buildControls();
  Promise.all([loadImage(meta.images), ...models.map((m) => loadImage(m.gridAtlas)), ...models.map((m) => loadImage(m.recon))])
    .then((imgs) => {
      imagePixels = pixelRows(imgs[0]);
      models.forEach((m, k) => {
        grids[k] = pixelRows(imgs[1 + k]);
        reconPixels[k] = pixelRows(imgs[1 + models.length + k]);
        bases[k] = drawBase(k);
      });
      $("status").textContent = meta.labels.length + " test points, " + models.length + " model(s).";
      select(0);
      window.aelabExplorer.ready = true;
      document.body.dataset.ready = "true";
    })
    .catch((err) => {
      $("status").textContent = "Could not load the page's images: " + err;
      $("status").className = "error";
    });
})();
