// MOS rating page. Talks to the JSON API of the study server; knows images by opaque ids only.
// Nothing in this folder may name the software or the methods: raters see these files.
// The rater's id and resume code (token) are kept in localStorage and sent as the X-Rater-Token header.
"use strict";

const STORE = "mos-rater";
const $ = (id) => document.getElementById(id);
const SECTIONS = ["start", "calibration", "rating", "paused", "done"];

let me = null;        // {rater, name, token}
let current = null;   // state from the server
let target = null;    // the image id being scored now
let changing = false; // true while re-scoring the latest vote
let busy = false;

function show(id) {
  for (const s of SECTIONS) $(s).hidden = s !== id;
  $("who").hidden = !me || id === "start";
  if (me) {
    $("who-name").textContent = me.name;
    $("who-code").textContent = me.token;
  }
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (me) headers["X-Rater-Token"] = me.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit", cache: "no-store",
  });
  let data = {};
  try { data = await resp.json(); } catch (e) { data = {}; }
  return { status: resp.status, ok: resp.ok, data };
}

function remember(value) {
  me = value;
  if (value) localStorage.setItem(STORE, JSON.stringify(value));
  else localStorage.removeItem(STORE);
}

// ---------------------------------------------------------------------------------------------
// start / resume

async function onStart(event) {
  event.preventDefault();
  const name = $("name").value.trim();
  const code = $("code").value.trim();
  $("start-error").textContent = "";
  if (!name) return;
  $("start-button").disabled = true;
  try {
    if (!$("code-row").hidden && code) {
      const r = await api("POST", "/api/resume", { name, token: code });
      if (!r.ok) { $("start-error").textContent = r.data.error || "could not resume"; return; }
      remember({ rater: r.data.rater, name: r.data.name, token: code.toUpperCase() });
    } else {
      const r = await api("POST", "/api/raters", { name });
      if (r.status === 409) {
        $("code-row").hidden = false;
        $("code").focus();
        $("start-error").textContent = r.data.error;
        return;
      }
      if (!r.ok) { $("start-error").textContent = r.data.error || "could not start"; return; }
      remember({ rater: r.data.rater, name: r.data.name, token: r.data.token });
    }
    await refresh();
  } finally {
    $("start-button").disabled = false;
  }
}

async function refresh() {
  const r = await api("GET", `/api/raters/${encodeURIComponent(me.rater)}`);
  if (!r.ok) {
    remember(null);
    show("start");
    return;
  }
  current = r.data;
  route();
}

function route() {
  if (!current.calibrated) return showCalibration();
  if (current.next === null && !changing) {
    $("done-total").textContent = String(current.total);
    return show("done");
  }
  showImage();
}

// ---------------------------------------------------------------------------------------------
// calibration

function showCalibration() {
  const box = $("examples");
  box.replaceChildren();
  for (const pair of current.calibration) {
    const row = document.createElement("div");
    row.className = "pair";
    for (const example of pair) {
      const fig = document.createElement("figure");
      const img = document.createElement("img");
      img.src = `/images/${encodeURIComponent(example.item)}`;
      img.alt = `example of a score of ${example.score}`;
      const cap = document.createElement("figcaption");
      cap.textContent = example.score === 1 ? "score 1: bad" : "score 5: excellent";
      fig.append(img, cap);
      row.append(fig);
    }
    box.append(row);
  }
  show("calibration");
}

async function onCalibrated() {
  const r = await api("POST", `/api/raters/${encodeURIComponent(me.rater)}/calibration`, {});
  if (r.ok) { current = r.data; route(); }
}

// ---------------------------------------------------------------------------------------------
// scoring

function setButtons(enabled) {
  for (const b of $("scores").querySelectorAll("button")) b.disabled = !enabled;
}

function showImage() {
  target = changing ? current.latest.item : current.next;
  const shown = changing ? current.done : current.done + 1;
  $("progress").textContent = `${shown} / ${current.total}`;
  $("mode").textContent = changing ? `changing your last score (was ${current.latest.score})` : "";
  $("back").disabled = changing || current.latest === null;
  for (const b of $("scores").querySelectorAll("button")) {
    b.classList.toggle("current", changing && Number(b.dataset.score) === current.latest.score);
  }
  $("rating-error").textContent = "";
  const img = $("image");
  setButtons(false); // scoring starts once the image is on screen
  img.onload = () => { if (!busy) setButtons(true); };
  img.onerror = () => { $("rating-error").textContent = "the image could not be loaded; reload the page"; };
  img.src = `/images/${encodeURIComponent(target)}`;
  img.dataset.item = target;
  show("rating");
  if (img.complete && img.naturalWidth > 0) setButtons(true);
}

async function vote(score) {
  if (busy || $("rating").hidden || !target) return;
  if ($("scores").querySelector("button").disabled) return;
  busy = true;
  setButtons(false);
  try {
    const r = await api("POST", `/api/raters/${encodeURIComponent(me.rater)}/votes`, { item: target, score });
    if (!r.ok) {
      $("rating-error").textContent = r.data.error || `error ${r.status}`;
      if (r.status === 409) await refresh();
      return;
    }
    current = r.data;
    changing = false;
    route();
  } finally {
    busy = false;
    if (!$("rating").hidden && $("image").complete && $("image").naturalWidth > 0) setButtons(true);
  }
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || $("rating").hidden) return;
  if (event.key >= "1" && event.key <= "5") {
    event.preventDefault();
    vote(Number(event.key));
  }
}

// ---------------------------------------------------------------------------------------------

function init() {
  $("start-form").addEventListener("submit", onStart);
  $("calibration-done").addEventListener("click", onCalibrated);
  $("scores").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-score]");
    if (b) vote(Number(b.dataset.score));
  });
  $("back").addEventListener("click", () => { if (current.latest) { changing = true; showImage(); } });
  $("stop").addEventListener("click", () => { changing = false; show("paused"); });
  $("continue").addEventListener("click", () => refresh());
  $("switch").addEventListener("click", (e) => {
    e.preventDefault();
    remember(null);
    $("code-row").hidden = true;
    $("name").value = "";
    $("code").value = "";
    show("start");
  });
  document.addEventListener("keydown", onKey);
  try { me = JSON.parse(localStorage.getItem(STORE) || "null"); } catch (e) { me = null; }
  if (me && me.rater && me.token) refresh();
  else { remember(null); show("start"); }
}

document.addEventListener("DOMContentLoaded", init);
