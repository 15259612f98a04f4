// artstyle studio: the page. Plain JS, no outside resources; everything goes through the JSON API.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token");
const $ = (id) => document.getElementById(id);
const FINISHED = ["done", "failed", "cancelled", "interrupted"];
const HIDDEN_FIELDS = ["style_blend_weights"]; // set by the painting rows' weights
//: The simple panel's sizes (the studio's largest is its limit, max_side).
const SIZES = [["Preview", 256], ["Standard", 512], ["Large", 1024], ["Poster", 2048], ["Poster XL", 4096]];
const PRESET_LABELS = {
  fast: "Quick (fewer iterations)", default: "Standard",
  "study-vgg19-adam": "The study's setup: VGG19 + Adam", "study-vgg16-lbfgs": "The study's setup: VGG16 + L-BFGS",
};

const state = {
  schema: null, presets: {}, photos: [], paintings: [], // paintings: [{image, weight, builtin}]
  errors: {}, tracked: null, source: null, jobsKey: "", checkTimer: null, checkSeq: 0,
  estimateTimer: null, estimateSeq: 0, estimateError: "", viewList: [], viewAt: -1,
};

function q(url) { // the token travels with every request (also images and event streams)
  if (!TOKEN) return url;
  return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN);
}

async function api(url, opts = {}) {
  let res;
  try {
    res = await fetch(q(url), opts);
  } catch (e) {
    throw new Error("the server cannot be reached (" + e.message + ")");
  }
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) throw new Error((body && body.error) || `${res.status} ${res.statusText}`);
  return body;
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
}

const imageUrl = (id, thumb) => q(`/api/images/${id}` + (thumb ? "?thumb=1" : ""));
const fmt = (x) => (x === null || x === undefined || Number.isNaN(x)) ? "–" : Number(x).toPrecision(3);
function duration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "–";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
  return m ? `${m} min ${String(s % 60).padStart(2, "0")} s` : `${s} s`;
}

// ---- the simple panel: strength, size, colours, quality versus time --------------------------------

function strengthMultiplier(s) { // the config's STRENGTH_CURVE, interpolated as the config does
  const pts = state.schema.strength_curve;
  if (s <= pts[0][0]) return pts[0][1];
  for (let i = 1; i < pts.length; i++) {
    const [s0, m0] = pts[i - 1], [s1, m1] = pts[i];
    if (s <= s1) {
      const t = (s - s0) / (s1 - s0);
      return m0 === 0 ? m1 * t : Math.exp(Math.log(m0) + t * (Math.log(m1) - Math.log(m0)));
    }
  }
  return pts[pts.length - 1][1];
}

function buildSimple() {
  const box = $("sizes");
  box.textContent = "";
  for (const [label, px] of SIZES) {
    if (px > state.schema.limits.max_side) continue;
    const id = "size-" + px;
    const input = el("input", { type: "radio", name: "size", id, value: String(px) });
    input.addEventListener("change", () => { setField("size", px); });
    box.append(el("label", { class: "choice", for: id }, input, `${label} `, el("span", { class: "muted", text: `${px} px` })));
  }
  $("strength").addEventListener("input", () => { setField("style_strength", Number($("strength").value)); });
  $("colors").addEventListener("change", () => { setField("preserve_color", $("colors").value); });
}

function setField(name, value) {
  const input = $("f-" + name);
  if (input) input.value = String(value);
  syncSimple();
  scheduleCheck();
}

function syncSimple() { // the simple controls show what the form (Advanced) holds
  const get = (n) => ($("f-" + n) ? $("f-" + n).value : "");
  const strength = Number(get("style_strength"));
  $("strength").value = String(strength);
  $("strength-out").textContent = Number.isFinite(strength) ? `${strength} %` : "";
  const weight = Number(get("style_weight"));
  const m = Number.isFinite(strength) ? strengthMultiplier(strength) : NaN;
  $("strength-help").textContent = Number.isFinite(m) && Number.isFinite(weight)
    ? `style weight ${fmt(weight)} × ${fmt(m)} = ${fmt(weight * m)} (0 % keeps the photo)` : "";
  for (const r of document.querySelectorAll("#sizes input")) r.checked = r.value === get("size");
  $("colors").value = get("preserve_color") || "none";
}

function simpleValues() {
  const out = {};
  for (const n of ["size", "style_strength", "preserve_color"]) if ($("f-" + n)) out[n] = $("f-" + n).value;
  return out;
}

// ---- settings form, generated from the config's schema ---------------------------------------

function fieldInput(f) {
  const id = "f-" + f.name;
  if (f.type === "choice" || f.named) {
    const sel = el("select", { id, name: f.name });
    for (const c of (f.choices || f.named)) sel.append(el("option", { value: c, text: c }));
    return sel;
  }
  if (f.type === "boolean") return el("input", { id, name: f.name, type: "checkbox" });
  const inputmode = f.type === "integer" ? "numeric" : (f.type === "number" ? "decimal" : null);
  return el("input", { id, name: f.name, type: "text", inputmode, autocomplete: "off" });
}

function buildForm() {
  const form = $("form");
  form.textContent = "";
  const groups = {};
  for (const f of state.schema.fields) {
    if (HIDDEN_FIELDS.includes(f.name)) continue;
    if (!groups[f.group]) {
      const details = el("details", {}, el("summary", { text: f.group }));
      groups[f.group] = el("fieldset");
      details.append(groups[f.group]);
      form.append(details);
    }
    const bounds = [];
    if (f.minimum !== undefined) bounds.push((f.exclusive_minimum ? "> " : "≥ ") + f.minimum);
    if (f.maximum !== undefined) bounds.push((f.exclusive_maximum ? "< " : "≤ ") + f.maximum);
    const help = f.help + (bounds.length ? ` (${bounds.join(", ")})` : "") + (f.type === "list" ? " Comma-separated." : "");
    const input = fieldInput(f);
    input.addEventListener("input", () => { syncSimple(); scheduleCheck(); });
    input.addEventListener("change", () => { syncSimple(); scheduleCheck(); });
    groups[f.group].append(el("div", { class: "field", id: "field-" + f.name },
      el("label", { for: input.id, text: f.name, title: f.help }), input,
      el("div", { class: "help", text: help }),
      el("div", { class: "ferr", id: "err-" + f.name, role: "alert" })));
  }
}

function fillForm(values) {
  for (const f of state.schema.fields) {
    const input = $("f-" + f.name);
    if (!input || !(f.name in values)) continue;
    const v = values[f.name];
    if (f.type === "boolean") input.checked = !!v;
    else if (Array.isArray(v)) input.value = v.join(", ");
    else input.value = String(v);
  }
  syncSimple();
  scheduleCheck();
}

function readValue(f, input) {
  if (f.type === "boolean") return input.checked;
  const raw = input.value.trim();
  if (f.type === "list") {
    if (!raw) return [];
    return raw.split(",").map((s) => s.trim()).filter((s) => s).map((s) =>
      (f.items === "number" || f.items === "integer") && s !== "" && !Number.isNaN(Number(s)) ? Number(s) : s);
  }
  if ((f.type === "integer" || f.type === "number") && raw !== "" && !Number.isNaN(Number(raw))) return Number(raw);
  return raw; // the config names what is wrong with it
}

function settings() {
  const out = {};
  for (const f of state.schema.fields) {
    const input = $("f-" + f.name);
    if (input) out[f.name] = readValue(f, input);
  }
  if (state.paintings.length > 1) out.style_blend_weights = state.paintings.map((p) => readWeight(p));
  return out;
}

function readWeight(p) {
  const n = Number(p.weight);
  return Number.isNaN(n) ? p.weight : n;
}

function scheduleCheck() {
  clearTimeout(state.checkTimer);
  state.checkTimer = setTimeout(checkSettings, 250);
}

async function checkSettings() {
  const seq = ++state.checkSeq;
  let res;
  try {
    res = await api("/api/config/check", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ preset: $("preset").value, settings: settings() }),
    });
  } catch (e) { $("form-msg").textContent = e.message; return; }
  if (seq !== state.checkSeq) return; // a newer check is on its way
  state.errors = res.errors || {};
  for (const f of state.schema.fields) {
    const box = $("field-" + f.name);
    if (!box) continue;
    const msg = state.errors[f.name] || "";
    box.classList.toggle("bad", !!msg);
    $("err-" + f.name).textContent = msg;
  }
  const shown = Object.keys(state.errors).filter((k) => $("field-" + k));
  $("form-msg").textContent = res.ok ? "" : (shown.length ? `${shown.length} setting(s) to fix` : res.error);
  for (const k of shown) { $("field-" + k).closest("details").open = true; $("advanced").open = true; }
  updateStart();
  if (res.ok) scheduleEstimate();
}

// ---- the estimate before Start ----------------------------------------------------------------

function jobForm() {
  const data = new FormData();
  for (const p of state.photos) data.append("content", p.id);
  for (const p of state.paintings) data.append("style", p.image.id);
  data.append("preset", $("preset").value);
  data.append("settings", JSON.stringify(settings()));
  return data;
}

function scheduleEstimate() {
  clearTimeout(state.estimateTimer);
  state.estimateTimer = setTimeout(estimate, 300);
}

async function estimate() {
  if (!state.photos.length || !state.paintings.length) { $("estimate").textContent = ""; return; }
  const seq = ++state.estimateSeq;
  let e;
  try {
    e = await api("/api/jobs/estimate", { method: "POST", body: jobForm() });
  } catch (err) { if (seq === state.estimateSeq) $("estimate").textContent = ""; return; }
  if (seq !== state.estimateSeq) return;
  state.estimateError = e.error || "";
  const box = $("estimate");
  box.classList.toggle("err", !!e.error);
  if (e.error) {
    box.textContent = e.error;
  } else {
    const n = e.jobs.length;
    const basis = e.basis === "measured" ? "from this machine's runs" : "a first guess until this machine has run once";
    const memory = `peak memory about ${e.memory_gb} GB` + (e.available_gb ? ` of ${e.available_gb} GB free` : "");
    box.textContent = `${n > 1 ? n + " pictures, " : ""}about ${duration(e.seconds)} (${basis}) · ${memory}` +
      (e.jobs.some((j) => j.tiled) ? " · painted in tiles" : "");
  }
  updateStart();
}

function updateStart() {
  const ready = state.photos.length && state.paintings.length && Object.keys(state.errors).length === 0 &&
    !$("form-msg").textContent && !state.estimateError;
  $("start").disabled = !ready;
  $("start").textContent = state.photos.length > 1 ? `Start ${state.photos.length} pictures` : "Start";
  $("start-experiment").disabled = !(state.photos.length && state.paintings.length);
  $("start-msg").textContent = !state.photos.length ? "choose a photo" : (!state.paintings.length ? "choose a painting" : "");
}

// ---- images -----------------------------------------------------------------------------------

async function upload(file, msgBox) {
  msgBox.textContent = "";
  const data = new FormData();
  data.append("file", file, file.name);
  try {
    return await api("/api/images", { method: "POST", body: data });
  } catch (e) {
    msgBox.textContent = `${file.name}: ${e.message}`;
    return null;
  }
}

function setPhoto(image) { setPhotos([image]); }

function setPhotos(images) {
  state.photos = images;
  renderPhotos();
}

function renderPhotos() {
  const first = state.photos[0];
  $("photo-img").hidden = !first;
  if (first) $("photo-img").src = imageUrl(first.id, true);
  $("photo-name").textContent = state.photos.length === 1 ? `${first.name} · ${first.width}×${first.height}` :
    (state.photos.length ? `${state.photos.length} photos: one picture each, the same paintings and settings` : "");
  const list = $("photos");
  list.textContent = "";
  list.hidden = state.photos.length < 2;
  state.photos.forEach((im, i) => list.append(el("li", {},
    el("img", { src: imageUrl(im.id, true), alt: im.name }), el("span", { class: "name", text: im.name }),
    el("button", { type: "button", text: "✕", title: "remove", onclick: () => { state.photos.splice(i, 1); renderPhotos(); } }))));
  updateStart();
  scheduleEstimate();
}

function addPainting(image, weight = 1, builtin = false) {
  // a painting of the user's replaces the built-in one that was there by default; a blend is a
  // deliberate second painting (its weight shows once there are two)
  if (!builtin) state.paintings = state.paintings.filter((p) => !p.builtin);
  if (state.paintings.length >= (state.schema.limits.max_styles || 8)) {
    $("painting-msg").textContent = "that is as many paintings as one run takes";
    return;
  }
  state.paintings.push({ image, weight, builtin });
  renderPaintings();
}

function renderPaintings() {
  const box = $("paintings");
  box.textContent = "";
  state.paintings.forEach((p, i) => {
    const w = el("input", { type: "number", min: "0", step: "0.1", value: p.weight, title: "blend weight", "aria-label": "blend weight" });
    w.addEventListener("input", () => { p.weight = w.value; scheduleCheck(); });
    box.append(el("div", { class: "painting" },
      el("img", { src: imageUrl(p.image.id, true), alt: p.image.name }),
      el("span", { class: "name", text: p.image.name + (p.builtin ? " (built-in: yours replaces it)" : ""), title: p.image.name }),
      state.paintings.length > 1 ? w : null,
      el("button", { type: "button", text: "✕", title: "remove", onclick: () => { state.paintings.splice(i, 1); renderPaintings(); } })));
  });
  scheduleCheck();
  updateStart();
}

async function loadLibrary() {
  let images;
  try { images = await api("/api/images"); } catch (e) { return; }
  const box = $("library");
  box.textContent = "";
  for (const im of images) {
    box.append(el("div", { class: "thumb" },
      el("img", { src: imageUrl(im.id, true), alt: im.name, loading: "lazy" }),
      el("div", { class: "name", text: im.name, title: im.name }),
      el("div", {},
        el("button", { type: "button", text: "photo", onclick: () => setPhoto(im) }), " ",
        el("button", { type: "button", text: "+ photo", title: "add to a batch", onclick: () => setPhotos([...state.photos, im]) }), " ",
        el("button", { type: "button", text: "+ painting", onclick: () => addPainting(im) }))));
  }
  return images;
}

function dropZone(zone, input, onFiles) {
  const take = async (files) => { await onFiles([...files]); loadLibrary(); };
  input.addEventListener("change", () => { take(input.files); input.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); take(e.dataTransfer.files); });
}

// ---- jobs ---------------------------------------------------------------------------------------

async function start() {
  $("start").disabled = true;
  try {
    const res = await api("/api/jobs", { method: "POST", body: jobForm() });
    $("form-msg").textContent = res.skipped && res.skipped.length
      ? "left out: " + res.skipped.map((s) => `${s.name} (${s.error})`).join("; ") : "";
    track(res.jobs ? res.jobs[0] : res);
  } catch (e) {
    $("form-msg").textContent = e.message;
  } finally {
    updateStart();
    refreshJobs();
  }
}

async function startExperiment() {
  const data = new FormData();
  data.append("kind", "experiment");
  data.append("experiment", $("experiment").value);
  data.append("quick", $("quick").checked ? "true" : "false");
  for (const p of state.photos) data.append("content", p.id);
  for (const p of state.paintings) data.append("style", p.image.id);
  try {
    track(await api("/api/jobs", { method: "POST", body: data }));
    $("form-msg").textContent = "";
  } catch (e) {
    $("form-msg").textContent = e.message;
  }
  refreshJobs();
}

function track(job) {
  if (state.source) state.source.close();
  state.tracked = job.id;
  $("current").hidden = false;
  $("idle").hidden = true;
  $("preview").hidden = true;
  showJob(job);
  const es = new EventSource(q(`/api/jobs/${job.id}/events`));
  state.source = es;
  es.addEventListener("progress", (e) => showJob(JSON.parse(e.data)));
  es.addEventListener("preview", (e) => {
    const d = JSON.parse(e.data);
    const img = $("preview");
    img.src = q(`/api/jobs/${job.id}/image?n=${d.n}`);
    img.hidden = false;
  });
  for (const kind of FINISHED) {
    es.addEventListener(kind, (e) => {
      es.close();
      const rec = JSON.parse(e.data);
      showJob(rec);
      if (rec.has_image) { $("preview").src = q(`/api/jobs/${job.id}/image?final=1`); $("preview").hidden = false; }
      state.tracked = null;
      refreshJobs();
    });
  }
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) state.source = null; };
}

function title(job) {
  if (job.kind === "experiment") return `experiment: ${job.experiment}`;
  return `${job.content ? job.content.name : "?"} × ${(job.styles || []).map((s) => s.name).join(" + ")}`;
}

function showJob(job) {
  $("cur-title").textContent = title(job);
  const st = $("cur-status");
  st.textContent = job.status === "queued" ? `queued, position ${job.position}` : (job.cancelling && !FINISHED.includes(job.status) ? "cancelling…" : job.status);
  st.className = "badge " + job.status;
  $("cancel").disabled = FINISHED.includes(job.status);
  $("cancel").onclick = () => api(`/api/jobs/${job.id}`, { method: "DELETE" }).then(refreshJobs, (e) => alert(e.message));
  const p = job.progress || {};
  $("bar").value = FINISHED.includes(job.status) && job.status === "done" ? 1 : (p.fraction || 0);
  const lines = [];
  if (p.iteration !== undefined) {
    lines.push(`iteration ${p.iteration}/${p.total} · level ${p.scale}/${p.scales} (${(p.size || []).join("×")})`);
    const l = p.losses || {};
    lines.push(`loss ${fmt(l.total)} · content ${fmt(l.content)} · style ${fmt(l.style)} · tv ${fmt(l.tv)}`);
  }
  if (p.runs !== undefined) lines.push(`runs ${p.runs_done}/${p.runs}`);
  if (p.elapsed_s !== undefined && !FINISHED.includes(job.status)) lines.push(`elapsed ${duration(p.elapsed_s)} · ETA ${duration(p.eta_s)}`);
  if (FINISHED.includes(job.status)) {
    if (job.seconds !== undefined) lines.push(`took ${duration(job.seconds)}`);
    if (job.message) lines.push(job.message);
    if (job.report) lines.push("report ready (see the gallery)");
  }
  $("cur-info").textContent = lines.join("\n");
  drawCurve(job.curve || []);
}

function drawCurve(points) {
  const c = $("curve");
  const w = c.clientWidth || 480, h = c.clientHeight || 150;
  if (c.width !== w) c.width = w;
  if (c.height !== h) c.height = h;
  const g = c.getContext("2d");
  g.clearRect(0, 0, w, h);
  const pts = points.filter((p) => p[1] > 0);
  g.fillStyle = "#6b6b70";
  g.font = "11px system-ui";
  if (pts.length < 2) { g.fillText("loss curve (log scale) appears as it runs", 8, 16); return; }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => Math.log10(p[1]));
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const px = (x) => 36 + (w - 44) * (x - x0) / Math.max(1, x1 - x0);
  const py = (y) => 8 + (h - 24) * (1 - (y - y0) / Math.max(1e-9, y1 - y0));
  g.strokeStyle = "#ddd9d0"; g.beginPath(); g.moveTo(36, 8); g.lineTo(36, h - 16); g.lineTo(w - 8, h - 16); g.stroke();
  g.fillText(fmt(10 ** y1), 2, 14); g.fillText(fmt(10 ** y0), 2, h - 18);
  g.fillText(`iteration ${x1}`, w - 90, h - 3);
  g.strokeStyle = "#2451a6"; g.lineWidth = 1.5; g.beginPath();
  pts.forEach((p, i) => { const X = px(p[0]), Y = py(Math.log10(p[1])); if (i) g.lineTo(X, Y); else g.moveTo(X, Y); });
  g.stroke();
}

async function refreshJobs() {
  let jobs;
  try { jobs = await api("/api/jobs"); } catch (e) { $("server").textContent = e.message; return; }
  $("server").textContent = "";
  const active = jobs.filter((j) => !FINISHED.includes(j.status));
  const queue = $("queue");
  queue.textContent = "";
  for (const j of active.slice().reverse()) {
    queue.append(el("li", {},
      `${title(j)} — ${j.status === "queued" ? "position " + j.position : j.status} `,
      el("button", { type: "button", text: "cancel", onclick: () => api(`/api/jobs/${j.id}`, { method: "DELETE" }).then(refreshJobs) })));
  }
  if (!active.length) queue.append(el("li", { class: "muted", text: "empty" }));
  if (!state.tracked) {
    const running = active.find((j) => j.status === "running") || active[active.length - 1];
    if (running) track(running);
  }
  const done = jobs.filter((j) => FINISHED.includes(j.status));
  renderGroups(jobs);
  const key = done.map((j) => j.id + ":" + j.version).join(",");
  if (key !== state.jobsKey) { state.jobsKey = key; renderGallery(done); }
}

function renderGroups(jobs) { // batches: one line each, with their count, zip and cancel
  const groups = new Map();
  for (const j of jobs) if (j.group) (groups.get(j.group) || groups.set(j.group, []).get(j.group)).push(j);
  const box = $("groups");
  box.textContent = "";
  for (const [id, members] of groups) {
    const finished = members.filter((j) => FINISHED.includes(j.status)).length;
    const size = members[0].group_size || members.length;
    const open = finished < members.length;
    box.append(el("div", { class: "group row", "data-group": id },
      el("strong", { text: `Batch of ${size} photo${size > 1 ? "s" : ""}` }),
      el("span", { class: "group-count", text: `${finished}/${size} finished` }),
      el("progress", { max: String(size), value: String(finished) }),
      el("a", { href: q(`/api/groups/${id}/zip`), download: `artstyle-batch-${id.slice(0, 8)}.zip`, text: "zip of the images" }),
      open ? el("button", { type: "button", text: "Cancel the batch", onclick: () => api(`/api/groups/${id}`, { method: "DELETE" }).then(refreshJobs, (e) => alert(e.message)) }) : null));
  }
}

function renderGallery(jobs) {
  const box = $("gallery");
  box.textContent = "";
  $("gallery-empty").hidden = jobs.length > 0;
  state.viewList = jobs.filter((j) => j.has_image && j.content);
  for (const j of jobs) box.append(card(j));
}

// ---- the viewer: a result large, before/after at full width, 1:1, keyboard ----------------------

function openViewer(jobId) {
  const at = state.viewList.findIndex((j) => j.id === jobId);
  if (at < 0) return;
  state.viewAt = at;
  $("viewer").hidden = false;
  document.body.classList.add("viewing");
  zoomViewer(false); // (each opening starts fitted)
  showViewer();
  $("viewer-close").focus();
}

function showViewer() {
  const j = state.viewList[state.viewAt];
  $("viewer-title").textContent = `${title(j)} (${state.viewAt + 1}/${state.viewList.length})`;
  $("viewer-result").src = q(`/api/jobs/${j.id}/image?v=${j.version}`);
  $("viewer-photo").src = imageUrl(j.content.id);
  $("viewer-slider").value = "0";
  clipViewer();
  $("viewer-prev").disabled = state.viewAt <= 0;
  $("viewer-next").disabled = state.viewAt >= state.viewList.length - 1;
}

function fitViewer() { // the pair at the largest size that fits (fit), or at its pixels (1:1)
  const img = $("viewer-result");
  if (!img.naturalWidth) return;
  const stage = $("viewer-stage");
  const actual = stage.classList.contains("actual");
  const scale = actual ? 1 : Math.min((stage.clientWidth - 16) / img.naturalWidth, (stage.clientHeight - 8) / img.naturalHeight);
  const pair = $("viewer-pair");
  pair.style.width = `${Math.max(1, Math.floor(img.naturalWidth * scale))}px`;
  pair.style.height = `${Math.max(1, Math.floor(img.naturalHeight * scale))}px`;
  for (const im of pair.querySelectorAll("img")) im.style.imageRendering = scale >= 2 ? "pixelated" : "auto";
}

function clipViewer() {
  $("viewer-photo").style.clipPath = `inset(0 ${100 - $("viewer-slider").value}% 0 0)`;
}

function closeViewer() {
  $("viewer").hidden = true;
  document.body.classList.remove("viewing");
  state.viewAt = -1;
}

function stepViewer(d) {
  const at = state.viewAt + d;
  if (at >= 0 && at < state.viewList.length) { state.viewAt = at; showViewer(); }
}

function zoomViewer(on) {
  const stage = $("viewer-stage");
  const actual = on === undefined ? !stage.classList.contains("actual") : on;
  stage.classList.toggle("actual", actual);
  $("viewer-zoom").setAttribute("aria-pressed", String(actual));
  $("viewer-zoom").textContent = actual ? "fit" : "1:1";
  fitViewer();
}

function viewerKeys(e) {
  if ($("viewer").hidden) return;
  if (e.key === "Escape") closeViewer();
  else if (e.key === "ArrowRight") stepViewer(1);
  else if (e.key === "ArrowLeft") stepViewer(-1);
  else if (e.key === "1" || e.key === "z") zoomViewer();
  else return;
  e.preventDefault();
}

function compare(j) {
  const result = el("img", { src: q(`/api/jobs/${j.id}/image?v=${j.version}`), alt: "result", loading: "lazy" });
  const photo = el("img", { class: "over", src: imageUrl(j.content.id), alt: "photo", loading: "lazy" });
  const slider = el("input", { type: "range", min: "0", max: "100", value: "0", "aria-label": "before / after" });
  const set = () => { photo.style.clipPath = `inset(0 ${100 - slider.value}% 0 0)`; };
  slider.addEventListener("input", set);
  set();
  return el("div", { class: "compare", title: "slide to compare with the photo" }, result, photo, slider);
}

function card(j) {
  const s = j.settings || {};
  const l = j.losses || {};
  const facts = [];
  if (j.kind === "experiment") facts.push(`${j.quick ? "quick " : ""}experiment ${j.experiment}`);
  else facts.push(`${s.size} px · strength ${s.style_strength} % · ${s.optimizer} · ${s.style_loss} · ${s.scales} scale(s)`);
  if (j.seconds !== undefined) {
    const est = j.estimate && j.estimate.seconds !== undefined ? ` (estimated ${duration(j.estimate.seconds)})` : "";
    facts.push(`took ${duration(j.seconds)}${est}` + (j.iterations ? ` · ${j.iterations} iterations` : ""));
  }
  if (l.total !== undefined) facts.push(`loss ${fmt(l.total)} (content ${fmt(l.content)}, style ${fmt(l.style)}, tv ${fmt(l.tv)})`);
  if (j.message) facts.push(j.message);
  const links = [];
  if (j.has_image) {
    links.push(el("a", { href: q(`/api/jobs/${j.id}/image`), download: `artstyle-${j.id.slice(0, 8)}.png`, text: "PNG" }));
    links.push(el("a", { href: q(`/api/jobs/${j.id}/sidecar`), download: `artstyle-${j.id.slice(0, 8)}.png.json`, text: "sidecar" }));
  }
  if (j.report) links.push(el("a", { href: q(`/api/jobs/${j.id}/report`), target: "_blank", rel: "noopener", text: "open report" }));
  const inputs = el("div", { class: "inputs" },
    el("img", { src: imageUrl(j.content.id, true), alt: j.content.name, title: j.content.name }), "←",
    ...(j.styles || []).map((st) => el("img", { src: imageUrl(st.id, true), alt: st.name, title: st.name })));
  const buttons = el("div", { class: "row" });
  if (j.has_image && j.content) buttons.append(el("button", { type: "button", class: "open", text: "Open", onclick: () => openViewer(j.id) }));
  if (j.kind !== "experiment") buttons.append(el("button", { type: "button", text: "Use these settings again", onclick: () => reuse(j) }));
  for (const a of links) buttons.append(a);
  buttons.append(el("button", {
    type: "button", text: "Delete", onclick: () => {
      if (confirm("Delete this result?")) api(`/api/jobs/${j.id}`, { method: "DELETE" }).then(refreshJobs, (e) => alert(e.message));
    },
  }));
  return el("div", { class: "card", "data-job": j.id },
    j.has_image ? compare(j) : null,
    el("div", { class: "row" }, el("span", { class: "badge " + j.status, text: j.status }),
      el("span", { class: "muted", text: new Date(j.created * 1000).toLocaleString() })),
    el("div", { text: title(j) }), inputs,
    el("div", { class: "muted", text: facts.join(" · ") }),
    j.settings ? el("details", {}, el("summary", { text: "settings" }), el("pre", { text: JSON.stringify(j.settings, null, 1) })) : null,
    buttons);
}

function reuse(j) {
  $("preset").value = j.preset && state.presets[j.preset] ? j.preset : "default";
  fillForm(j.settings || {});
  setPhoto(j.content);
  const weights = (j.settings && j.settings.style_blend_weights) || [];
  state.paintings = (j.styles || []).map((im, i) => ({ image: im, weight: weights[i] !== undefined ? weights[i] : 1, builtin: false }));
  renderPaintings();
  window.scrollTo({ top: 0, behavior: "smooth" });
}

// ---- start --------------------------------------------------------------------------------------

async function init() {
  try {
    const cfg = await api("/api/config");
    state.schema = cfg;
    state.presets = cfg.presets;
  } catch (e) {
    $("server").textContent = e.message;
    return;
  }
  const preset = $("preset");
  for (const name of Object.keys(state.presets)) preset.append(el("option", { value: name, text: PRESET_LABELS[name] || name }));
  preset.value = "default";
  buildForm();
  buildSimple();
  fillForm(state.presets.default);
  // quality versus time changes the method, never the size, strength or colours chosen above
  preset.addEventListener("change", () => { const keep = simpleValues(); fillForm({ ...state.presets[preset.value], ...keep }); });
  $("reset").addEventListener("click", () => fillForm(state.presets[preset.value]));
  $("viewer-close").addEventListener("click", closeViewer);
  $("viewer-prev").addEventListener("click", () => stepViewer(-1));
  $("viewer-next").addEventListener("click", () => stepViewer(1));
  $("viewer-zoom").addEventListener("click", () => zoomViewer());
  $("viewer-slider").addEventListener("input", clipViewer);
  $("viewer-result").addEventListener("load", fitViewer);
  window.addEventListener("resize", fitViewer);
  document.addEventListener("keydown", viewerKeys);
  $("start").addEventListener("click", start);
  $("start-experiment").addEventListener("click", startExperiment);
  dropZone($("photo-drop"), $("photo-file"), async (files) => {
    if (!files.length) return;
    const taken = [];
    const bad = [];
    for (const f of files) {
      const im = await upload(f, $("photo-msg"));
      if (im) taken.push(im); else bad.push($("photo-msg").textContent);
    }
    if (taken.length) setPhotos(taken);
    $("photo-msg").textContent = bad.join("; ");
  });
  dropZone($("painting-drop"), $("painting-file"), async (files) => {
    for (const f of files) {
      const im = await upload(f, $("painting-msg"));
      if (im) addPainting(im);
    }
  });
  const images = (await loadLibrary()) || [];
  const photo = images.find((i) => i.id === "demo-photo");
  const painting = images.find((i) => i.id === "demo-painting");
  if (photo) setPhoto(photo);
  if (painting && !state.paintings.length) addPainting(painting, 1, true);
  try {
    const exps = await api("/api/experiments");
    const sel = $("experiment");
    for (const x of exps) sel.append(el("option", { value: x.name, text: x.title, "data-desc": x.description }));
    const desc = () => { const o = sel.selectedOptions[0]; $("experiment-desc").textContent = o ? o.dataset.desc : ""; };
    sel.addEventListener("change", desc);
    desc();
  } catch (e) { $("experiment-desc").textContent = e.message; }
  updateStart();
  await refreshJobs();
  setInterval(refreshJobs, 2000);
}

init();
