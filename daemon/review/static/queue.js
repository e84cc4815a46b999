"use strict";
// The queue: every item in review/ and spotcheck/ with the reasons from its sidecar.

function cell(row, content) {
  const td = row.insertCell();
  if (content instanceof Node) td.append(content); else td.textContent = content;
  return td;
}

async function load() {
  const response = await fetch("/api/items");
  if (response.status === 401) { location.href = "/login"; return; }
  const { items } = await response.json();
  const body = document.querySelector("#queue tbody");
  document.getElementById("count").textContent = `(${items.length})`;
  document.getElementById("empty").hidden = items.length > 0;
  for (const item of items) {
    const row = body.insertRow();
    const link = document.createElement("a");
    link.href = `/item?folder=${encodeURIComponent(item.folder)}&id=${encodeURIComponent(item.id)}`;
    link.textContent = item.name;
    link.className = "item-link";
    cell(row, link);
    cell(row, item.folder);
    const tag = document.createElement("span");
    tag.className = `tag ${item.place}`;
    tag.textContent = item.place === "spotcheck" ? "spot check" : "review";
    cell(row, tag);
    cell(row, item.media_type === "video" ? `video · ${item.frames} frames · ${item.tracks} track(s)` : `image · ${item.detections} detection(s)`);
    const reasons = document.createElement("ul");
    for (const text of item.reasons.length ? item.reasons : ["(spot check: a sample of clean results)"]) {
      const li = document.createElement("li");
      li.textContent = text;
      reasons.append(li);
    }
    cell(row, reasons);
    cell(row, item.created_at.replace("T", " ").slice(0, 16));
  }
}

load();
