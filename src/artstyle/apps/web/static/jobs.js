// artstyle studio: The jobs: start, follow one (events), the list, batches and the gallery.
import { $, api, duration, el, fmt, isFinished, q, state, title } from "./common.js";
import { jobForm, updateStart } from "./settings.js";
import { card } from "./viewer.js";

// ---- jobs ---------------------------------------------------------------------------------------

export async function start() {
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

export async function startExperiment() {
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

export async function startVideo() {
  const file = $("clip-file").files[0];
  if (!file) return;
  const data = jobForm();
  data.delete("content");
  data.append("kind", "video");
  data.append("clip", file, file.name);
  $("start-video").disabled = true;
  $("clip-msg").textContent = "uploading…";
  try {
    track(await api("/api/jobs", { method: "POST", body: data }));
    $("clip-msg").textContent = "";
  } catch (e) {
    $("clip-msg").textContent = e.message;
  } finally {
    $("start-video").disabled = false;
  }
  refreshJobs();
}

export function track(job) {
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
  for (const kind of state.schema.statuses.finished) {
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

export function showJob(job) {
  $("cur-title").textContent = title(job);
  const st = $("cur-status");
  st.textContent = job.status === "queued" ? `queued, position ${job.position}` : (job.cancelling && !isFinished(job.status) ? "cancelling…" : job.status);
  st.className = "badge " + job.status;
  $("cancel").disabled = isFinished(job.status);
  $("cancel").onclick = () => api(`/api/jobs/${job.id}`, { method: "DELETE" }).then(refreshJobs, (e) => alert(e.message));
  const p = job.progress || {};
  $("bar").value = isFinished(job.status) && job.status === "done" ? 1 : (p.fraction || 0);
  const lines = [];
  if (p.iteration !== undefined) {
    lines.push(`iteration ${p.iteration}/${p.total} · level ${p.scale}/${p.scales} (${(p.size || []).join("×")})`);
    const l = p.losses || {};
    lines.push(`loss ${fmt(l.total)} · content ${fmt(l.content)} · style ${fmt(l.style)} · tv ${fmt(l.tv)}`);
  }
  if (p.runs !== undefined) lines.push(`runs ${p.runs_done}/${p.runs}`);
  if (p.frames !== undefined) lines.push(`frame ${p.frames_done}/${p.frames}`);
  if (p.elapsed_s !== undefined && !isFinished(job.status)) lines.push(`elapsed ${duration(p.elapsed_s)} · ETA ${duration(p.eta_s)}`);
  if (isFinished(job.status)) {
    if (job.seconds !== undefined) lines.push(`took ${duration(job.seconds)}`);
    if (job.message) lines.push(job.message);
    if (job.report) lines.push("report ready (see the gallery)");
  }
  $("cur-info").textContent = lines.join("\n");
  drawCurve(job.curve || []);
}

export function drawCurve(points) {
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

export async function refreshJobs() {
  let jobs;
  try { jobs = await api("/api/jobs"); } catch (e) { $("server").textContent = e.message; return; }
  $("server").textContent = "";
  const active = jobs.filter((j) => !isFinished(j.status));
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
  const done = jobs.filter((j) => isFinished(j.status));
  renderGroups(jobs);
  const key = done.map((j) => j.id + ":" + j.version).join(",");
  if (key !== state.jobsKey) { state.jobsKey = key; renderGallery(done); }
}

export function renderGroups(jobs) { // batches: one line each, with their count, zip and cancel
  const groups = new Map();
  for (const j of jobs) if (j.group) (groups.get(j.group) || groups.set(j.group, []).get(j.group)).push(j);
  const box = $("groups");
  box.textContent = "";
  for (const [id, members] of groups) {
    const finished = members.filter((j) => isFinished(j.status)).length;
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

export function renderGallery(jobs) {
  const box = $("gallery");
  box.textContent = "";
  $("gallery-empty").hidden = jobs.length > 0;
  state.viewList = jobs.filter((j) => j.has_image && j.content && j.kind !== "video");
  for (const j of jobs) box.append(card(j, refreshJobs));
}

