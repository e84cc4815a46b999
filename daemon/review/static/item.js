"use strict";
// One item: the masked picture (or a frame of the masked video) with the detector's outlines drawn over it on
// a canvas (never into the pixels), the reviewer's regions and false positives, and the approval.
// Coordinates of edits are relative (0..1), as in a rework document (docs/review.md).

const params = new URLSearchParams(location.search);
const folder = params.get("folder");
const itemId = params.get("id");
const query = `folder=${encodeURIComponent(folder)}&id=${encodeURIComponent(itemId)}`;
const COLORS = { face: "#ff4d4d", license_plate: "#3aa0ff", cross_check: "#ff8c00", manual: "#ffd400", fp: "#9e9e9e" };
const CLASS_BY_ID = { 1: "face", 2: "license_plate" };

const picture = document.getElementById("picture");
const canvas = document.getElementById("overlay");
const ctx = canvas.getContext("2d");
const frameInput = document.getElementById("frame");
const statusLine = document.getElementById("status");

let item = null;
let frame = 0;
let boxes = new Map();        // video: frame -> {trk, mask} from the boxes companion (output pixels)
const edits = [];             // {kind: "add" | "fp", spec, label, shapes: [{frames, polygon}]}
let keys = {};                // key boxes of the track being drawn: frame -> [x1, y1, x2, y2]
let drag = null;              // box being dragged: {x, y, x2, y2}
let points = [];              // polygon being clicked

const tool = () => document.querySelector("input[name=tool]:checked").value;
const scope = () => document.querySelector("input[name=scope]:checked").value;
const clamp = (v) => Math.min(1, Math.max(0, v));
const isVideo = () => item && item.media_type === "video";

function relative(event) {
  const rect = canvas.getBoundingClientRect();
  return [clamp((event.clientX - rect.left) / rect.width), clamp((event.clientY - rect.top) / rect.height)];
}

function boxPolygon([x1, y1, x2, y2]) { return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]; }
function active(frames) { return !frames || (frames[0] <= frame && frame <= frames[1]); }
function round(v) { return Math.round(v * 1e5) / 1e5; }

// -- drawing ------------------------------------------------------------------------------------------------

function strokeBox(box, color, dashed, label) {
  const [x1, y1, x2, y2] = box;
  const W = canvas.width, H = canvas.height;
  ctx.setLineDash(dashed ? [6 * lineScale(), 4 * lineScale()] : []);
  ctx.strokeStyle = color;
  ctx.strokeRect(x1 * W, y1 * H, (x2 - x1) * W, (y2 - y1) * H);
  if (label) {
    const s = lineScale();
    ctx.setLineDash([]);
    ctx.font = `${12 * s}px system-ui, sans-serif`;
    const width = ctx.measureText(label).width + 6 * s;
    const top = y1 * H >= 16 * s ? y1 * H - 16 * s : y1 * H;  // above the box, or inside it at the top edge
    ctx.fillStyle = color;
    ctx.fillRect(x1 * W, top, width, 16 * s);
    ctx.fillStyle = "#000";
    ctx.fillText(label, x1 * W + 3 * s, top + 12 * s);
  }
}

function fillPolygon(polygon, color) {
  ctx.beginPath();
  polygon.forEach(([x, y], i) => (i ? ctx.lineTo(x * canvas.width, y * canvas.height) : ctx.moveTo(x * canvas.width, y * canvas.height)));
  ctx.closePath();
  ctx.globalAlpha = 0.35;
  ctx.fillStyle = color;
  ctx.fill();
  ctx.globalAlpha = 1;
  ctx.setLineDash([]);
  ctx.strokeStyle = color;
  ctx.stroke();
}

function lineScale() {
  const rect = canvas.getBoundingClientRect();
  return rect.width ? canvas.width / rect.width : 1;
}

function markedFalse(box) {
  return edits.some((e) => e.kind === "fp" && e.shapes.some((s) => active(s.frames) && s.box &&
    s.box.every((v, i) => Math.abs(v - box[i]) < 1e-4)));
}

function detectorBoxes() {
  // [relative box, class label, text, dashed, track id or null] for what the detector found on this frame
  if (!item) return [];
  const W = item.width, H = item.height;
  const rel = (b) => [b[0] / W, b[1] / H, b[2] / W, b[3] / H];
  if (!isVideo()) {
    const found = item.detections.map((d) => [rel(d.box), d.class, `${d.class === "face" ? "face" : "plate"} ${d.score.toFixed(2)}`, d.band === "review", null]);
    // plate-like regions the cross-check found that no mask touches: look there, add a region if it is a plate
    return found.concat((item.plate_cross_check || []).map((b) => [rel(b), "cross_check", "cross-check: unmasked?", true, null]));
  }
  const row = boxes.get(frame);
  if (!row) return [];
  const out = row.trk.map(([id, cls, x1, y1, x2, y2, source]) =>
    [rel([x1, y1, x2, y2]), CLASS_BY_ID[cls], `#${id} ${source}`, source !== "detection", id]);
  for (const [x1, y1, x2, y2, cls, score, track] of row.mask) {
    if (track === -1) out.push([rel([x1, y1, x2, y2]), CLASS_BY_ID[cls], `${Number(score).toFixed(2)}`, true, null]);
  }
  return out;
}

function draw() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.lineWidth = 2 * lineScale();
  for (const [box, cls, text, dashed] of detectorBoxes()) {
    const fp = markedFalse(box);
    strokeBox(box, fp ? COLORS.fp : COLORS[cls] || "#fff", dashed, fp ? `false positive` : text);
  }
  for (const edit of edits.filter((e) => e.kind === "add")) {
    for (const shape of edit.shapes) if (active(shape.frames)) fillPolygon(shape.polygon, COLORS.manual);
  }
  if (keys[frame]) strokeBox(keys[frame], COLORS.manual, true, "key box");
  if (drag) strokeBox([Math.min(drag.x, drag.x2), Math.min(drag.y, drag.y2), Math.max(drag.x, drag.x2), Math.max(drag.y, drag.y2)], COLORS.manual, true);
  if (points.length) {
    ctx.beginPath();
    points.forEach(([x, y], i) => (i ? ctx.lineTo(x * canvas.width, y * canvas.height) : ctx.moveTo(x * canvas.width, y * canvas.height)));
    ctx.strokeStyle = COLORS.manual;
    ctx.setLineDash([4, 3]);
    ctx.stroke();
  }
}

// -- edits ----------------------------------------------------------------------------------------------------

function frames() {
  if (!isVideo()) return null;
  const s = scope();
  if (s === "all") return null;
  if (s === "range") {
    const first = Number(document.getElementById("range-first").value);
    const last = Number(document.getElementById("range-last").value);
    return [Math.min(first, last), Math.max(first, last)];
  }
  return [frame, frame];
}

function describe(frames) {
  if (!isVideo()) return "";
  return frames ? (frames[0] === frames[1] ? ` on frame ${frames[0]}` : ` on frames ${frames[0]}–${frames[1]}`) : " on every frame";
}

function addEdit(edit) {
  edits.push(edit);
  renderEdits();
  draw();
}

function addShape(polygon, box) {
  if (isVideo() && scope() === "keys") {
    keys[frame] = box || bounds(polygon);
    document.getElementById("keys-done").disabled = false;
    draw();
    return;
  }
  const range = frames();
  const spec = box ? { box: box.map(round) } : { polygon: polygon.map((p) => p.map(round)) };
  if (range) spec.frames = range;
  addEdit({ kind: "add", spec, label: `${box ? "box" : "polygon"}${describe(range)}`, shapes: [{ frames: range, polygon }] });
}

function bounds(polygon) {
  const xs = polygon.map((p) => p[0]), ys = polygon.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

function addKeys(keyBoxes, label) {
  const list = Object.keys(keyBoxes).map(Number).sort((a, b) => a - b);
  if (!list.length) return;
  const spec = { keys: Object.fromEntries(list.map((f) => [String(f), keyBoxes[f].map(round)])) };
  const shapes = [];  // the preview: the same linear interpolation as the server's
  list.slice(0, -1).forEach((a, i) => {
    const b = list[i + 1];
    for (let f = a; f < b; f++) {
      const t = (f - a) / (b - a);
      shapes.push({ frames: [f, f], polygon: boxPolygon(keyBoxes[a].map((v, k) => (1 - t) * v + t * keyBoxes[b][k])) });
    }
  });
  shapes.push({ frames: [list.at(-1), list.at(-1)], polygon: boxPolygon(keyBoxes[list.at(-1)]) });
  addEdit({ kind: "add", spec, label: `${label} on frames ${list[0]}–${list.at(-1)}`, shapes });
}

function markFalsePositive(box, trackId) {
  if (markedFalse(box)) return;
  if (!isVideo()) {
    addEdit({ kind: "fp", spec: { box: box.map(round) }, label: "false positive", shapes: [{ frames: null, box }] });
    return;
  }
  const W = item.width, H = item.height;
  const specs = [], shapes = [];
  const frameList = trackId === null ? [frame] : [...boxes.keys()].sort((a, b) => a - b);
  for (const f of frameList) {
    const row = trackId === null ? [null, null, box[0] * W, box[1] * H, box[2] * W, box[3] * H] :
      (boxes.get(f)?.trk || []).find((t) => t[0] === trackId);
    if (!row) continue;
    const rel = [row[2] / W, row[3] / H, row[4] / W, row[5] / H].map(clamp);
    specs.push({ box: rel.map(round), frames: [f, f] });
    shapes.push({ frames: [f, f], box: rel });
  }
  addEdit({ kind: "fp", specs, label: trackId === null ? `false positive on frame ${frame}` : `track #${trackId} is a false positive`, shapes });
}

function renderEdits() {
  const list = document.getElementById("edits");
  list.replaceChildren();
  edits.forEach((edit, index) => {
    const li = document.createElement("li");
    li.textContent = edit.label;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "remove";
    remove.addEventListener("click", () => { edits.splice(index, 1); renderEdits(); draw(); });
    li.append(remove);
    list.append(li);
  });
}

function document_() {
  const body = {
    folder, id: itemId, reviewer: document.getElementById("reviewer").value.trim(),
    add: edits.filter((e) => e.kind === "add").map((e) => e.spec),
    false_positives: edits.filter((e) => e.kind === "fp").flatMap((e) => e.specs || [e.spec]),
  };
  const band = document.querySelector("input[name=band]:checked");
  if (band) body.unmasked_review_band = band.value;
  return body;
}

async function approveItem() {
  const body = document_();
  if (!body.reviewer) { setStatus("Enter your name as the reviewer.", true); return; }
  if (item.unmasked_review_band && !body.unmasked_review_band) {
    setStatus("Decide what happens to the review-band detections left unmasked.", true);
    return;
  }
  localStorage.setItem("veil-reviewer", body.reviewer);
  const button = document.getElementById("approve");
  button.disabled = true;
  setStatus("Re-rendering from the original…");
  const response = await fetch("/api/approve", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (response.status === 401) { location.href = "/login"; return; }  // the session expired
  const result = await response.json();
  if (!response.ok) {
    setStatus(`Not approved: ${result.error}`, true);
    button.disabled = false;
    return;
  }
  setStatus(`Approved: published as ${result.name} (${result.regions} region(s), ${result.false_positives} false positive(s)${result.false_positives && !result.unmasked ? ", kept masked by policy" : ""}).`);
  document.body.dataset.approved = "true";
}

function setStatus(text, error = false) {
  statusLine.textContent = text;
  statusLine.className = error ? "error" : "";
}

// -- pointer ------------------------------------------------------------------------------------------------

canvas.addEventListener("mousedown", (event) => {
  if (tool() !== "box") return;
  const [x, y] = relative(event);
  drag = { x, y, x2: x, y2: y };
});

canvas.addEventListener("mousemove", (event) => {
  if (!drag) return;
  [drag.x2, drag.y2] = relative(event);
  draw();
});

window.addEventListener("mouseup", () => {
  if (!drag) return;
  const box = [Math.min(drag.x, drag.x2), Math.min(drag.y, drag.y2), Math.max(drag.x, drag.x2), Math.max(drag.y, drag.y2)];
  drag = null;
  if (box[2] - box[0] > 0.002 && box[3] - box[1] > 0.002) addShape(boxPolygon(box), box);
  else draw();
});

canvas.addEventListener("click", (event) => {
  const [x, y] = relative(event);
  if (tool() === "polygon") {
    points.push([x, y]);
    draw();
  } else if (tool() === "select") {
    const hit = detectorBoxes().find(([b]) => b[0] <= x && x <= b[2] && b[1] <= y && y <= b[3]);
    if (hit) markFalsePositive(hit[0], hit[4]);
  }
});

canvas.addEventListener("dblclick", () => {
  if (tool() !== "polygon") return;
  points.pop();  // the double click's second click
  if (points.length >= 3) addShape(points.slice());
  points = [];
  draw();
});

// -- video --------------------------------------------------------------------------------------------------

function showFrame(index) {
  const last = Number(frameInput.max);
  frame = Math.max(0, Math.min(last, index));
  frameInput.value = String(frame);
  document.getElementById("frame-number").textContent = String(frame);
  picture.src = `/api/frame?${query}&n=${frame}`;
}

async function loadBoxes(total) {
  for (let first = 0; first < total; first += 2000) {
    const response = await fetch(`/api/boxes?${query}&first=${first}&count=2000`);
    const data = await response.json();
    for (const row of data.frames) boxes.set(row.f, row);
  }
  const select = document.getElementById("track");
  for (const track of item.track_list) {
    const option = document.createElement("option");
    option.value = String(track.id);
    option.textContent = `#${track.id} ${track.class} (frames ${track.first_frame}–${track.last_frame})`;
    select.append(option);
  }
}

function followTrack() {
  const id = Number(document.getElementById("track").value);
  if (!document.getElementById("track").value) return;
  const W = item.width, H = item.height;
  const trackKeys = {};
  for (const [f, row] of boxes) {
    const t = row.trk.find((r) => r[0] === id);
    if (!t) continue;
    const [x1, y1, x2, y2] = [t[2] / W, t[3] / H, t[4] / W, t[5] / H];
    const padX = (x2 - x1) * 0.15, padY = (y2 - y1) * 0.15;  // a track box is an estimate: some room around it
    trackKeys[f] = [clamp(x1 - padX), clamp(y1 - padY), clamp(x2 + padX), clamp(y2 + padY)];
  }
  addKeys(trackKeys, `region following track #${id}`);
}

// The picture as large as the column and the window allow (small pictures are enlarged: easier to outline).
function fit() {
  const column = document.querySelector(".viewer").clientWidth;
  const room = window.innerHeight * 0.78;
  const scale = Math.min(column / item.width, room / item.height, 4);
  picture.style.width = `${Math.floor(item.width * scale)}px`;
  draw();
}

// -- start --------------------------------------------------------------------------------------------------

async function start() {
  const response = await fetch(`/api/item?${query}`);
  if (response.status === 401) { location.href = "/login"; return; }
  if (!response.ok) { setStatus((await response.json()).error, true); return; }
  item = await response.json();
  document.getElementById("title").textContent = item.name;
  document.getElementById("where").textContent = `${item.folder} · ${item.place === "spotcheck" ? "spot check" : "review"}`;
  const reasons = document.getElementById("reasons");
  for (const text of item.reasons.length ? item.reasons : ["Spot check: a sample of clean results."]) {
    const li = document.createElement("li");
    li.textContent = text;
    reasons.append(li);
  }
  document.getElementById("unmask-note").textContent = item.allow_unmask
    ? "False positives are unmasked in the re-render (this profile allows it); every mark is audited."
    : "This profile keeps false positives masked; the marks are recorded in the audit trail.";
  if (item.unmasked_statement) {  // said plainly, per item: what the page masks that the file does not
    document.getElementById("band-note").textContent = item.unmasked_statement;
    document.getElementById("band-box").hidden = false;
  }
  document.getElementById("reviewer").value = localStorage.getItem("veil-reviewer") || "";
  canvas.width = item.width;
  canvas.height = item.height;
  picture.addEventListener("load", () => { document.body.dataset.shown = String(frame); fit(); });  // tests wait on it
  if (isVideo()) {
    const last = Math.max(0, (item.frames || 1) - 1);
    frameInput.max = String(last);
    document.getElementById("frame-last").textContent = String(last);
    document.getElementById("range-last").value = String(last);
    document.getElementById("scrubber").hidden = false;
    document.getElementById("scope-box").hidden = false;
    frameInput.addEventListener("input", () => showFrame(Number(frameInput.value)));
    document.getElementById("prev").addEventListener("click", () => showFrame(frame - 1));
    document.getElementById("next").addEventListener("click", () => showFrame(frame + 1));
    document.addEventListener("keydown", (e) => {
      if (e.target instanceof HTMLInputElement && e.target.type !== "range") return;
      if (e.key === ",") showFrame(frame - 1);
      if (e.key === ".") showFrame(frame + 1);
    });
    document.getElementById("keys-done").addEventListener("click", () => {
      addKeys(keys, "key-box region");
      keys = {};
      document.getElementById("keys-done").disabled = true;
    });
    document.getElementById("follow").addEventListener("click", followTrack);
    await loadBoxes(item.frames || 0);
    showFrame(0);
  } else {
    picture.src = `/api/image?${query}`;
  }
  document.getElementById("approve").addEventListener("click", approveItem);
  window.addEventListener("resize", fit);
  document.body.dataset.ready = "true";
}

start();
