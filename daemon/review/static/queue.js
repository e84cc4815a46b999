"use strict";
// The queue: the items in review/ and spotcheck/, a page at a time, newest first or grouped by the reason
// from their sidecar.

const state = { sort: "newest", page: 1 };

function cell(row, content) {
  const td = row.insertCell();
  if (content instanceof Node) td.append(content); else td.textContent = content;
  return td;
}

function listOf(texts) {
  const list = document.createElement("ul");
  for (const text of texts) {
    const li = document.createElement("li");
    li.textContent = text;
    list.append(li);
  }
  return list;
}

function showRow(body, item) {
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
  cell(row, listOf(item.reasons.length ? item.reasons : ["(spot check: a sample of clean results)"]));
  cell(row, item.created_at.replace("T", " ").slice(0, 16));
}

async function load() {
  const query = new URLSearchParams({ sort: state.sort, page: String(state.page) });
  const response = await fetch(`/api/items?${query}`);
  if (response.status === 401) { location.href = "/login"; return; }
  const queue = await response.json();
  const body = document.querySelector("#queue tbody");
  body.replaceChildren();
  document.getElementById("count").textContent = `(${queue.total})`;
  document.getElementById("empty").hidden = queue.total > 0;
  document.getElementById("page").textContent = `page ${queue.page} of ${queue.pages}`;
  document.getElementById("previous").disabled = queue.page <= 1;
  document.getElementById("next").disabled = queue.page >= queue.pages;
  document.getElementById("reasons").replaceChildren(
    listOf(Object.entries(queue.reasons).map(([kind, count]) => `${count} × ${kind}`)));
  for (const item of queue.items) showRow(body, item);
}

document.getElementById("sort").addEventListener("change", (event) => {
  state.sort = event.target.value;
  state.page = 1;
  load();
});
document.getElementById("previous").addEventListener("click", () => { state.page -= 1; load(); });
document.getElementById("next").addEventListener("click", () => { state.page += 1; load(); });
load();
