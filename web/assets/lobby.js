// The lobby: one card per live room, kept up to date from the /notifications feed.
import { apiBase, apiUrl, describeVideo, followRooms, linkPages, liveFor, pageHref, viewers } from "./api.js";

const list = document.getElementById("rooms");
const empty = document.getElementById("empty");
const status = document.getElementById("feed-status");
const template = document.getElementById("card-template");
let rooms = [];
let received = false;

linkPages();
document.getElementById("whip-url").textContent = `${apiBase}/whip`;
for (const button of document.querySelectorAll("[data-copy]")) {
  button.addEventListener("click", async () => {
    const text = document.getElementById(button.dataset.copy).textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      getSelection().selectAllChildren(document.getElementById(button.dataset.copy));
      button.textContent = "Selected";
    }
    setTimeout(() => (button.textContent = "Copy"), 2000);
  });
}

followRooms((next) => {
  rooms = next;
  received = true;
  render();
}, (state) => {
  status.dataset.state = state;
  status.textContent = state === "live" ? "Updating live" : "Reconnecting…";
});

// Only the "live for" labels change with time; the feed brings everything else.
setInterval(() => {
  for (const room of rooms) {
    const card = list.querySelector(`[data-room-id="${CSS.escape(room.id)}"]`);
    if (card) card.querySelector(".card-meta").textContent = meta(room);
  }
}, 30000);

function render() {
  const seen = new Set();
  for (const room of rooms) {
    seen.add(room.id);
    let card = list.querySelector(`[data-room-id="${CSS.escape(room.id)}"]`);
    if (!card) {
      card = template.content.firstElementChild.cloneNode(true);
      card.dataset.roomId = room.id;
      card.querySelector(".card-link").href = pageHref("watch", room.id);
      card.querySelector(".card-title").textContent = room.id;
    }
    list.append(card); // keeps the server's order (oldest first)
    card.querySelector(".viewers").textContent = viewers(room.viewer_count);
    card.querySelector(".card-meta").textContent = meta(room);
    card.querySelector(".card-link").setAttribute(
      "aria-label",
      `Watch ${room.id}, ${viewers(room.viewer_count)}, live for ${liveFor(room.created_at)}`,
    );
    setThumbnail(card, room);
  }
  for (const card of [...list.children]) {
    if (!seen.has(card.dataset.roomId)) card.remove();
  }
  empty.hidden = !received || rooms.length > 0;
  document.title = rooms.length > 0 ? `(${rooms.length}) Live rooms` : "Live rooms";
}

function meta(room) {
  const video = describeVideo(room.video);
  return [video, `live ${liveFor(room.created_at)}`].filter(Boolean).join(" · ");
}

function setThumbnail(card, room) {
  const thumb = card.querySelector(".thumb");
  const src = room.thumbnail_url ? thumbnailSrc(room.thumbnail_url) : "";
  if (thumb.dataset.src === src) return;
  thumb.dataset.src = src;
  if (!src) {
    thumb.querySelector("img")?.remove();
    return;
  }
  // Load off-screen first so a card never flashes an empty image while the new one downloads.
  const next = new Image();
  next.alt = "";
  next.onload = () => {
    if (thumb.dataset.src !== src) return;
    const img = thumb.querySelector("img");
    if (img) img.replaceWith(next);
    else thumb.prepend(next);
  };
  next.src = src;
}

// A card is at most ~400 CSS px wide; 480 px (one of the sizes the server makes) stays sharp on most phones.
function thumbnailSrc(url) {
  const src = new URL(apiUrl(url));
  src.searchParams.set("w", "480");
  return src.href;
}
