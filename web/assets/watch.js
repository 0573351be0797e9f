// The player: WHEP into a muted <video>, retried whenever the room comes (back) online.
import {
  apiUrl,
  bitrateMeter,
  connected,
  describeVideo,
  followRooms,
  linkPages,
  liveFor,
  preferH264,
  reason,
  viewers,
} from "./api.js";

const video = document.getElementById("video");
const message = document.getElementById("message");
const messageText = document.getElementById("message-text");
const messageMore = document.getElementById("message-more");
const unmuteButton = document.getElementById("unmute");
const statsToggle = document.getElementById("stats-toggle");
const statsPanel = document.getElementById("stats");

const params = new URLSearchParams(location.search);
const pathMatch = location.pathname.match(/\/watch\/([^/]+)$/);
// Room ids are [A-Za-z0-9_-] only, so the path segment needs no decoding (and a bad escape cannot throw).
const roomId = pathMatch ? pathMatch[1] : params.get("room") ?? "";

let session = null; // { pc, location, createdAt } while a WHEP session exists
let connecting = false;
let played = false; // played at least once: a later absence means "ended", not "not live"
let feedRoom = null; // this room in the latest /notifications snapshot, or null
let feedKnown = false; // a snapshot arrived and the feed is connected
let retryTimer;
let retryDelay = 1000;

linkPages();
document.getElementById("room-title").textContent = roomId || "No room";
document.title = `${roomId} · Live`;

if (!/^[A-Za-z0-9_-]{1,64}$/.test(roomId)) {
  show("missing", "There is no room with that name.");
} else {
  followRooms(onRooms, (state) => {
    if (state !== "live") feedKnown = false;
  });
  connect();
}

function onRooms(rooms) {
  feedKnown = true;
  feedRoom = rooms.find((r) => r.id === roomId) ?? null;
  renderRoomInfo();
  if (feedRoom) {
    // A publisher that left and came back under the same name is a new room: start over.
    if (session?.createdAt && session.createdAt !== feedRoom.created_at) stop();
    if (session) session.createdAt ??= feedRoom.created_at;
    else connect();
  } else {
    stop();
    if (!connecting) waitOrRetry();
  }
}

async function connect() {
  if (session || connecting) return;
  connecting = true;
  clearTimeout(retryTimer);
  if (!played) show("connecting", "Connecting…");
  const pc = new RTCPeerConnection();
  let response;
  try {
    preferH264(pc.addTransceiver("video", { direction: "recvonly" }));
    pc.addTransceiver("audio", { direction: "recvonly" });
    const stream = new MediaStream();
    pc.ontrack = (event) => {
      stream.addTrack(event.track);
      video.srcObject = stream;
    };
    await pc.setLocalDescription(await pc.createOffer());
    response = await fetch(apiUrl(`/whep?target_id=${encodeURIComponent(roomId)}`), {
      method: "POST",
      headers: { "Content-Type": "application/sdp" },
      body: pc.localDescription.sdp,
    });
    if (response.status !== 201) throw new Error(await reason(response));
  } catch (error) {
    connecting = false;
    pc.close();
    if (response?.status === 404) waitOrRetry("not-live");
    else waitOrRetry("error", `Could not play: ${error.message}. Retrying…`);
    return;
  }
  connecting = false;
  const location = response.headers.get("Location");
  session = { pc, location: location ? apiUrl(location) : null, createdAt: feedRoom?.created_at };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed" || pc.connectionState === "closed") drop(pc);
    else if (pc.connectionState === "disconnected") {
      // Often recovers by itself (a burst of lost packets): give it a few seconds first.
      setTimeout(() => pc.connectionState === "disconnected" && drop(pc), 4000);
    }
  };
  try {
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    await connected(pc);
  } catch (error) {
    if (session?.pc !== pc) return; // stopped meanwhile: the room ended or the page is closing
    stop();
    waitOrRetry("error", `Could not play: ${error.message}. Retrying…`);
    return;
  }
  if (session?.pc !== pc) return;
  retryDelay = 1000;
  show("playing");
  played = true;
  video.play().catch(() => {
    // Autoplay refused even though muted (some power-saving modes): the button starts it instead.
    unmuteButton.textContent = "Play";
  });
}

function drop(pc) {
  if (session?.pc !== pc) return;
  stop();
  waitOrRetry("reconnecting", "The stream dropped. Reconnecting…");
}

/** Ends the WHEP session, telling the server (keepalive, so it also works while the page is closing). */
function stop() {
  if (!session) return;
  const { pc, location } = session;
  session = null;
  pc.onconnectionstatechange = null;
  pc.close();
  video.srcObject = null;
  if (location) fetch(location, { method: "DELETE", keepalive: true }).catch(() => {});
}

/**
 * Not playing: when the feed is up and says the room is not live, say so and wait for the feed to announce
 * it; otherwise (the feed is down or the room is still starting) try again after a growing delay.
 */
function waitOrRetry(state = "not-live", text = "") {
  clearTimeout(retryTimer);
  if (feedKnown && !feedRoom) {
    if (played) show("ended", "This stream has ended. It will start playing here again if it comes back.");
    else showNotLive();
    return;
  }
  if (state === "not-live") showNotLive();
  else show(state, text);
  retryTimer = setTimeout(connect, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 10000);
}

function showNotLive() {
  show("missing", `“${roomId}” is not live right now. It will start playing here as soon as it goes live.`);
}

function show(state, text = "") {
  message.dataset.state = state;
  message.hidden = state === "playing";
  messageText.textContent = text;
  messageMore.hidden = !(state === "missing" || state === "ended");
}

function renderRoomInfo() {
  document.getElementById("live-badge").hidden = !feedRoom;
  document.getElementById("viewer-count").textContent = feedRoom ? viewers(feedRoom.viewer_count) : "";
  const details = feedRoom
    ? [describeVideo(feedRoom.video), `live ${liveFor(feedRoom.created_at)}`].filter(Boolean).join(" · ")
    : "offline";
  document.getElementById("room-details").textContent = details;
  if (feedRoom && !feedRoom.audio) unmuteButton.hidden = true;
  else unmuteButton.hidden = false;
}
setInterval(renderRoomInfo, 30000);

unmuteButton.addEventListener("click", () => {
  video.muted = unmuteButton.textContent === "Mute";
  unmuteButton.textContent = video.muted ? "Unmute" : "Mute";
  video.play().catch(() => {});
});

document.getElementById("fullscreen").addEventListener("click", () => {
  const player = document.getElementById("player");
  if (document.fullscreenElement) document.exitFullscreen();
  else if (player.requestFullscreen) player.requestFullscreen();
  else video.webkitEnterFullscreen?.(); // iOS Safari only lets the <video> itself go full screen
});

// Closing or leaving the page ends the session now rather than at the server's consent timeout.
addEventListener("pagehide", stop);
addEventListener("pageshow", (event) => {
  if (event.persisted && feedRoom) connect();
});

// --- stats overlay -------------------------------------------------------------------------------------------

let statsTimer;
const receiveRate = bitrateMeter();

statsToggle.addEventListener("click", () => {
  const on = statsToggle.getAttribute("aria-pressed") !== "true";
  statsToggle.setAttribute("aria-pressed", String(on));
  statsPanel.hidden = !on;
  clearInterval(statsTimer);
  receiveRate.reset();
  if (on) {
    updateStats();
    statsTimer = setInterval(updateStats, 1000);
  }
});

async function updateStats() {
  const set = (name, value) => (statsPanel.querySelector(`[data-stat="${name}"]`).textContent = value);
  const pc = session?.pc;
  if (!pc) {
    for (const dd of statsPanel.querySelectorAll("dd")) dd.textContent = "–";
    return;
  }
  const report = await pc.getStats();
  let bytes = 0;
  let videoIn;
  let pair;
  report.forEach((s) => {
    if (s.type === "inbound-rtp") {
      bytes += s.bytesReceived ?? 0;
      if (s.kind === "video") videoIn = s;
    } else if (s.type === "transport" && s.selectedCandidatePairId) {
      pair = report.get(s.selectedCandidatePairId);
    }
  });
  const kbps = receiveRate(bytes);
  if (kbps !== undefined) set("bitrate", `${kbps} kbit/s`);
  if (videoIn) {
    set("resolution", videoIn.frameWidth ? `${videoIn.frameWidth}×${videoIn.frameHeight}` : "–");
    set("fps", videoIn.framesPerSecond !== undefined ? `${Math.round(videoIn.framesPerSecond)}` : "–");
    const lost = Math.max(0, videoIn.packetsLost ?? 0);
    const total = lost + (videoIn.packetsReceived ?? 0);
    set("loss", total > 0 ? `${((100 * lost) / total).toFixed(2)} % (${lost})` : "–");
    set("codec", report.get(videoIn.codecId)?.mimeType?.replace("video/", "") ?? "–");
  }
  const rtt = pair?.currentRoundTripTime;
  set("rtt", rtt !== undefined ? `${Math.round(rtt * 1000)} ms` : "–");
}
