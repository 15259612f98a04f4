// artstyle studio: The settings: the simple panel (strength, size, colours, quality), the form generated from the
// config's schema, the checks and the estimate before Start.
import { $, api, duration, el, fmt, HIDDEN_FIELDS, SIZES, state, title } from "./common.js";

// ---- the simple panel: strength, size, colours, quality versus time --------------------------------

export function strengthMultiplier(s) { // the server's multiplier at the nearest half percent
  const table = state.schema.strength_multipliers;
  return table[Math.min(table.length - 1, Math.max(0, Math.round(s * 2)))];
}

export function buildSimple() {
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

export function setField(name, value) {
  const input = $("f-" + name);
  if (input) input.value = String(value);
  syncSimple();
  scheduleCheck();
}

export function syncSimple() { // the simple controls show what the form (Advanced) holds
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

export function simpleValues() {
  const out = {};
  for (const n of ["size", "style_strength", "preserve_color"]) if ($("f-" + n)) out[n] = $("f-" + n).value;
  return out;
}

// ---- settings form, generated from the config's schema ---------------------------------------

export function fieldInput(f) {
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

export function buildForm() {
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

export function fillForm(values) {
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

export function readValue(f, input) {
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

export function settings() {
  const out = {};
  for (const f of state.schema.fields) {
    const input = $("f-" + f.name);
    if (input) out[f.name] = readValue(f, input);
  }
  if (state.paintings.length > 1) out.style_blend_weights = state.paintings.map((p) => readWeight(p));
  return out;
}

export function readWeight(p) {
  const n = Number(p.weight);
  return Number.isNaN(n) ? p.weight : n;
}

export function scheduleCheck() {
  clearTimeout(state.checkTimer);
  state.checkTimer = setTimeout(checkSettings, 250);
}

export async function checkSettings() {
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

export function jobForm() {
  const data = new FormData();
  for (const p of state.photos) data.append("content", p.id);
  for (const p of state.paintings) data.append("style", p.image.id);
  data.append("preset", $("preset").value);
  data.append("settings", JSON.stringify(settings()));
  return data;
}

export function scheduleEstimate() {
  clearTimeout(state.estimateTimer);
  state.estimateTimer = setTimeout(estimate, 300);
}

export async function estimate() {
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
    // (how many of the painting's own pixels each pixel of the picture gets; under 1 it is enlarged)
    const px = e.painting_px;
    const painting = px === null || px === undefined ? "" :
      ` · painting ${px >= 1 ? "1" : px.toPrecision(2)} px per picture px` +
      (px < 0.5 ? ` (enlarged ${(1 / px).toFixed(1)}×: a larger scan of it gives finer strokes)` : "");
    box.textContent = `${n > 1 ? n + " pictures, " : ""}about ${duration(e.seconds)} (${basis}) · ${memory}` +
      (e.jobs.some((j) => j.tiled) ? " · painted in tiles" : "") + painting;
  }
  updateStart();
}

export function updateStart() {
  const ready = state.photos.length && state.paintings.length && Object.keys(state.errors).length === 0 &&
    !$("form-msg").textContent && !state.estimateError;
  $("start").disabled = !ready;
  $("start").textContent = state.photos.length > 1 ? `Start ${state.photos.length} pictures` : "Start";
  $("start-experiment").disabled = !(state.photos.length && state.paintings.length);
  $("start-msg").textContent = !state.photos.length ? "choose a photo" : (!state.paintings.length ? "choose a painting" : "");
}

