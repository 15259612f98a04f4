// artstyle studio: The viewer: a result large, before/after at full width, 1:1, keyboard; the gallery's cards.
import { $, api, duration, el, fmt, imageUrl, q, state, title } from "./common.js";
import { renderPaintings, setPhoto } from "./images.js";
import { fillForm } from "./settings.js";

// ---- the viewer: a result large, before/after at full width, 1:1, keyboard ----------------------

export function openViewer(jobId) {
  const at = state.viewList.findIndex((j) => j.id === jobId);
  if (at < 0) return;
  state.viewAt = at;
  $("viewer").hidden = false;
  document.body.classList.add("viewing");
  zoomViewer(false); // (each opening starts fitted)
  showViewer();
  $("viewer-close").focus();
}

export function showViewer() {
  const j = state.viewList[state.viewAt];
  $("viewer-title").textContent = `${title(j)} (${state.viewAt + 1}/${state.viewList.length})`;
  $("viewer-result").src = q(`/api/jobs/${j.id}/image?v=${j.version}`);
  $("viewer-photo").src = imageUrl(j.content.id);
  $("viewer-slider").value = "0";
  clipViewer();
  $("viewer-prev").disabled = state.viewAt <= 0;
  $("viewer-next").disabled = state.viewAt >= state.viewList.length - 1;
}

export function fitViewer() { // the pair at the largest size that fits (fit), or at its pixels (1:1)
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

export function clipViewer() {
  $("viewer-photo").style.clipPath = `inset(0 ${100 - $("viewer-slider").value}% 0 0)`;
}

export function closeViewer() {
  $("viewer").hidden = true;
  document.body.classList.remove("viewing");
  state.viewAt = -1;
}

export function stepViewer(d) {
  const at = state.viewAt + d;
  if (at >= 0 && at < state.viewList.length) { state.viewAt = at; showViewer(); }
}

export function zoomViewer(on) {
  const stage = $("viewer-stage");
  const actual = on === undefined ? !stage.classList.contains("actual") : on;
  stage.classList.toggle("actual", actual);
  $("viewer-zoom").setAttribute("aria-pressed", String(actual));
  $("viewer-zoom").textContent = actual ? "fit" : "1:1";
  fitViewer();
}

export function viewerKeys(e) {
  if ($("viewer").hidden) return;
  if (e.key === "Escape") closeViewer();
  else if (e.key === "ArrowRight") stepViewer(1);
  else if (e.key === "ArrowLeft") stepViewer(-1);
  else if (e.key === "1" || e.key === "z") zoomViewer();
  else return;
  e.preventDefault();
}

export function compare(j) {
  const result = el("img", { src: q(`/api/jobs/${j.id}/image?v=${j.version}`), alt: "result", loading: "lazy" });
  const photo = el("img", { class: "over", src: imageUrl(j.content.id), alt: "photo", loading: "lazy" });
  const slider = el("input", { type: "range", min: "0", max: "100", value: "0", "aria-label": "before / after" });
  const set = () => { photo.style.clipPath = `inset(0 ${100 - slider.value}% 0 0)`; };
  slider.addEventListener("input", set);
  set();
  return el("div", { class: "compare", title: "slide to compare with the photo" }, result, photo, slider);
}

export function card(j, refresh) { // refresh: the list again, after a delete
  const s = j.settings || {};
  const l = j.losses || {};
  const facts = [];
  const clip = j.kind === "video";
  if (j.kind === "experiment") facts.push(`${j.quick ? "quick " : ""}experiment ${j.experiment}`);
  else if (clip) facts.push(`clip of ${j.clip.frames} frames · ${s.size} px · strength ${s.style_strength} %`);
  else facts.push(`${s.size} px · strength ${s.style_strength} % · ${s.optimizer} · ${s.style_loss} · ${s.scales} scale(s)`);
  if (j.seconds !== undefined) {
    const est = j.estimate && j.estimate.seconds !== undefined ? ` (estimated ${duration(j.estimate.seconds)})` : "";
    facts.push(`took ${duration(j.seconds)}${est}` + (j.iterations ? ` · ${j.iterations} iterations` : ""));
  }
  if (l.total !== undefined) facts.push(`loss ${fmt(l.total)} (content ${fmt(l.content)}, style ${fmt(l.style)}, tv ${fmt(l.tv)})`);
  if (j.message) facts.push(j.message);
  const links = [];
  if (clip && j.has_video) {
    links.push(el("a", { href: q(`/api/jobs/${j.id}/video`), download: `artstyle-${j.id.slice(0, 8)}.mp4`, text: "MP4" }));
    links.push(el("a", { href: q(`/api/jobs/${j.id}/sidecar`), download: `artstyle-${j.id.slice(0, 8)}.mp4.json`, text: "sidecar" }));
  } else if (j.has_image && !clip) {
    links.push(el("a", { href: q(`/api/jobs/${j.id}/image`), download: `artstyle-${j.id.slice(0, 8)}.png`, text: "PNG" }));
    links.push(el("a", { href: q(`/api/jobs/${j.id}/sidecar`), download: `artstyle-${j.id.slice(0, 8)}.png.json`, text: "sidecar" }));
  }
  if (j.report) links.push(el("a", { href: q(`/api/jobs/${j.id}/report`), target: "_blank", rel: "noopener", text: "open report" }));
  const inputs = el("div", { class: "inputs" },
    clip ? el("span", { text: `▶ ${j.clip.name}` }) : el("img", { src: imageUrl(j.content.id, true), alt: j.content.name, title: j.content.name }), "←",
    ...(j.styles || []).map((st) => el("img", { src: imageUrl(st.id, true), alt: st.name, title: st.name })));
  const buttons = el("div", { class: "row" });
  if (j.has_image && j.content) buttons.append(el("button", { type: "button", class: "open", text: "Open", onclick: () => openViewer(j.id) }));
  if (j.kind === "stylize") buttons.append(el("button", { type: "button", text: "Use these settings again", onclick: () => reuse(j) }));
  for (const a of links) buttons.append(a);
  buttons.append(el("button", {
    type: "button", text: "Delete", onclick: () => {
      if (confirm("Delete this result?")) api(`/api/jobs/${j.id}`, { method: "DELETE" }).then(refresh, (e) => alert(e.message));
    },
  }));
  return el("div", { class: "card", "data-job": j.id },
    clip && j.has_video ? el("video", { src: q(`/api/jobs/${j.id}/video`), controls: "", loop: "", preload: "metadata", poster: q(`/api/jobs/${j.id}/image`), class: "clip" })
      : (j.has_image && !clip ? compare(j) : (j.has_image ? el("img", { src: q(`/api/jobs/${j.id}/image`), alt: "the last frame painted", class: "clip" }) : null)),
    el("div", { class: "row" }, el("span", { class: "badge " + j.status, text: j.status }),
      el("span", { class: "muted", text: new Date(j.created * 1000).toLocaleString() })),
    el("div", { text: title(j) }), inputs,
    el("div", { class: "muted", text: facts.join(" · ") }),
    j.settings ? el("details", {}, el("summary", { text: "settings" }), el("pre", { text: JSON.stringify(j.settings, null, 1) })) : null,
    buttons);
}

export function reuse(j) {
  $("preset").value = j.preset && state.presets[j.preset] ? j.preset : "default";
  fillForm(j.settings || {});
  setPhoto(j.content);
  const weights = (j.settings && j.settings.style_blend_weights) || [];
  state.paintings = (j.styles || []).map((im, i) => ({ image: im, weight: weights[i] !== undefined ? weights[i] : 1, builtin: false }));
  renderPaintings();
  window.scrollTo({ top: 0, behavior: "smooth" });
}

