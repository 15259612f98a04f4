// artstyle studio: The photos and paintings: uploads, the library, the chosen rows.
import { $, api, el, imageUrl, state, title } from "./common.js";
import { scheduleCheck, scheduleEstimate, updateStart } from "./settings.js";

// ---- images -----------------------------------------------------------------------------------

export async function upload(file, msgBox) {
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

export function setPhoto(image) { setPhotos([image]); }

export function setPhotos(images) {
  state.photos = images;
  renderPhotos();
}

export function renderPhotos() {
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

export function addPainting(image, weight = 1, builtin = false) {
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

export function renderPaintings() {
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

export async function loadLibrary() {
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

export function dropZone(zone, input, onFiles) {
  const take = async (files) => { await onFiles([...files]); loadLibrary(); };
  input.addEventListener("change", () => { take(input.files); input.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); take(e.dataTransfer.files); });
}

