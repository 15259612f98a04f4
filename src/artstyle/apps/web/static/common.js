// artstyle studio: The page's shared pieces: the token, the API, element helpers, formats and the one state.

export const TOKEN = new URLSearchParams(location.search).get("token");
export const $ = (id) => document.getElementById(id);
export const HIDDEN_FIELDS = ["style_blend_weights"]; // set by the painting rows' weights
//: The simple panel's sizes (the studio's largest is its limit, max_side).
export const SIZES = [["Preview", 256], ["Standard", 512], ["Large", 1024], ["Poster", 2048], ["Poster XL", 4096]];
export const PRESET_LABELS = {
  fast: "Quick (fewer iterations)", default: "Standard",
  "study-vgg19-adam": "The study's setup: VGG19 + Adam", "study-vgg16-lbfgs": "The study's setup: VGG16 + L-BFGS",
};

export const state = {
  schema: null, presets: {}, photos: [], paintings: [], // paintings: [{image, weight, builtin}]
  errors: {}, tracked: null, source: null, jobsKey: "", checkTimer: null, checkSeq: 0,
  estimateTimer: null, estimateSeq: 0, estimateError: "", viewList: [], viewAt: -1,
};

export function q(url) { // the token travels with every request (also images and event streams)
  if (!TOKEN) return url;
  return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN);
}

export async function api(url, opts = {}) {
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

export function el(tag, attrs = {}, ...kids) {
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

export const imageUrl = (id, thumb) => q(`/api/images/${id}` + (thumb ? "?thumb=1" : ""));
export const fmt = (x) => (x === null || x === undefined || Number.isNaN(x)) ? "–" : Number(x).toPrecision(3);
export function duration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "–";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
  return m ? `${m} min ${String(s % 60).padStart(2, "0")} s` : `${s} s`;
}


// Whether a job status is final, as the server's schema lists them (GET /api/config: statuses).
export function isFinished(status) { return state.schema.statuses.finished.includes(status); }

// A job's name: its photo and paintings, or its experiment.
export function title(job) {
  if (job.kind === "experiment") return `experiment: ${job.experiment}`;
  if (job.kind === "video") return `clip ${job.clip ? job.clip.name : "?"} × ${(job.styles || []).map((s) => s.name).join(" + ")}`;
  return `${job.content ? job.content.name : "?"} × ${(job.styles || []).map((s) => s.name).join(" + ")}`;
}
