// artstyle studio: The page starts here: it reads the config (schema, presets, limits, job statuses) and wires the
// controls.
import { $, api, el, PRESET_LABELS, state } from "./common.js";
import { addPainting, dropZone, loadLibrary, setPhoto, setPhotos, upload } from "./images.js";
import { refreshJobs, start, startExperiment, startVideo } from "./jobs.js";
import { buildForm, buildSimple, fillForm, simpleValues, updateStart } from "./settings.js";
import { clipViewer, closeViewer, fitViewer, stepViewer, viewerKeys, zoomViewer } from "./viewer.js";

// ---- start --------------------------------------------------------------------------------------

async function init() {
  let cfg;
  try {
    cfg = await api("/api/config");
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
  $("start-video").addEventListener("click", startVideo);
  $("clip-file").addEventListener("change", () => {
    const f = $("clip-file").files[0];
    $("clip-name").textContent = f ? f.name : "";
    $("start-video").disabled = !f;
  });
  const lim = cfg.limits || {};
  $("clip-limits").textContent = `Clips of up to ${lim.max_clip_frames} frames, painted at up to ${lim.max_clip_side} px `
    + `(choose the size above), each frame from the one before (no flicker); frames appear as they are painted. `
    + `Longer clips: artstyle video on the command line.`;
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
