// The player: WHEP into a muted <video>, retried whenever the room comes (back) online.
//
// Endings are shown within a second of happening: the server ends a viewer's session with BYE and DTLS
// close_notify, which closes the browser's DTLS transport at once (see onSessionEnd), and the page then asks
// the server why: the room is gone ("The stream ended"), or the server does not answer ("The server
// restarted — reconnecting…"). A takeover keeps the viewers; the feed's `takeovers` count goes up, and the
// page says "Another encoder took over this room" over the video for a few seconds.
import {
  apiUrl,
  bitrateMeter,
  browserCodecs,
  browserHas,
  codecAdvice,
  codecName,
  codecsIn,
  connected,
  describeError,
  describeVideo,
  followRooms,
  linkPages,
  listWords,
  liveFor,
  onSessionEnd,
  preferH264,
  reason,
  roomState,
  serverAway,
  viewers,
  viewerToken,
  withToken,
} from "./api.js";

const video = document.getElementById("video");
const message = document.getElementById("message");
const messageText = document.getElementById("message-text");
const messageMore = document.getElementById("message-more");
const notice = document.getElementById("notice");
const unmuteButton = document.getElementById("unmute");
const statsToggle = document.getElementById("stats-toggle");
const statsPanel = document.getElementById("stats");
const qualityControl = document.getElementById("quality-control");
const quality = document.getElementById("quality");
const qualityNow = document.getElementById("quality-now");

const params = new URLSearchParams(location.search);
const pathMatch = location.pathname.match(/\/watch\/([^/]+)$/);
// Room ids are [A-Za-z0-9_-] only, so the path segment needs no decoding (and a bad escape cannot throw).
const roomId = pathMatch ? pathMatch[1] : params.get("room") ?? "";

const RESTARTED = "The server restarted — reconnecting…";

let session = null; // { pc, location, createdAt, takeovers, detach } while a WHEP session exists
let connecting = false;
let played = false; // played at least once: a later absence means "ended", not "not live"
let restarted = false; // the server went away while we watched: say so until the stream plays again
let feedRoom = null; // this room in the latest /notifications snapshot, or null
let feedKnown = false; // a snapshot arrived and the feed is connected
let privateRoom = false; // the server refused this page's viewer token (or its lack of one)
let unplayable = null; // created_at of the room this browser cannot play (406): retried when it changes
let retryTimer;
let retryDelay = 1000;
let noticeTimer;
let stopFeed = () => {};

linkPages();
document.getElementById("room-title").textContent = roomId || "No room";
document.title = `${roomId} · Live`;

if (!/^[A-Za-z0-9_-]{1,64}$/.test(roomId)) {
  show("missing", "There is no room with that name.");
} else {
  start();
}

async function start() {
  if (viewerToken) {
    // A token the server refuses would fail every reconnection of the feed (each 401 spends the address's
    // failure budget): check it once first.
    const check = await fetch(apiUrl(withToken("/rooms")), { cache: "no-store" }).catch(() => null);
    if (check?.status === 401 || check?.status === 403) return askForToken(await reason(check));
    await check?.body?.cancel();
  }
  stopFeed = followRooms(onRooms, (state) => {
    if (state !== "live") feedKnown = false;
  });
  connect();
}

function onRooms(rooms) {
  if (privateRoom) return;
  feedKnown = true;
  feedRoom = rooms.find((r) => r.id === roomId) ?? null;
  renderRoomInfo();
  if (feedRoom) {
    // A publisher that left and came back under the same name is a new room: start over.
    if (session?.createdAt && session.createdAt !== feedRoom.created_at) stop();
    if (session) {
      session.createdAt ??= feedRoom.created_at;
      noticeTakeover();
    } else if (unplayable !== feedRoom.created_at) connect();
  } else {
    stop();
    if (!connecting) notLive();
  }
}

async function connect() {
  if (session || connecting || privateRoom) return;
  clearTimeout(retryTimer);
  const codec = feedRoom?.video?.codec;
  if (codec && browserHas(codec, "receiver") === false) return cannotPlay(codec);
  connecting = true;
  if (!played && !restarted) show("connecting", "Connecting…");
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
      headers: {
        "Content-Type": "application/sdp",
        ...(viewerToken ? { Authorization: `Bearer ${viewerToken}` } : {}),
      },
      body: pc.localDescription.sdp,
    });
    if (response.status !== 201) throw new Error(await reason(response));
  } catch (error) {
    connecting = false;
    pc.close();
    if (response?.status === 401 || response?.status === 403) askForToken(error.message);
    else if (response?.status === 404) notLive();
    else if (response?.status === 406) cannotPlay(feedRoom?.video?.codec, error.message);
    else if (serverAway(response ?? error)) away();
    else retry("error", `Could not play: ${describeError(error)}. Retrying…`);
    return;
  }
  connecting = false;
  const location = response.headers.get("Location");
  session = {
    pc,
    location: location ? apiUrl(location) : null,
    createdAt: feedRoom?.created_at,
    takeovers: feedRoom?.takeovers,
    layers: followLayers(response.headers.get("Link") ?? ""),
  };
  try {
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    session.detach = onSessionEnd(pc, () => ended(pc));
    pc.onconnectionstatechange = () => {
      // Often recovers by itself (a burst of lost packets): give it a few seconds first.
      if (pc.connectionState !== "disconnected") return;
      setTimeout(() => pc.connectionState === "disconnected" && ended(pc), 4000);
    };
    await connected(pc);
  } catch (error) {
    if (session?.pc !== pc) return; // stopped meanwhile: the room ended or the page is closing
    stop();
    retry("error", `Could not play: ${describeError(error)}. Retrying…`);
    return;
  }
  if (session?.pc !== pc) return;
  retryDelay = 1000;
  unplayable = null;
  restarted = false;
  show("playing");
  played = true;
  video.play().catch(() => {
    // Autoplay refused even though muted (some power-saving modes): the button starts it instead.
    unmuteButton.textContent = "Play";
  });
}

/** The server ended our session (or the network is gone): find out why and say so. */
async function ended(pc) {
  if (session?.pc !== pc) return;
  stop({ tellServer: false });
  const state = await roomState(roomId);
  if (session || connecting) return; // the feed already brought the stream back
  if (state === "live") return connect();
  // Fresher than the feed's last snapshot, which may still list the room for a moment.
  feedRoom = null;
  if (state === "unreachable") away();
  else notLive();
  renderRoomInfo();
}

/** Ends the WHEP session, telling the server (keepalive, so it also works while the page is closing). */
function stop({ tellServer = true } = {}) {
  if (!session) return;
  const { pc, location, detach, layers } = session;
  session = null;
  detach?.();
  layers?.close();
  pc.onconnectionstatechange = null;
  pc.close();
  video.srcObject = null;
  hideNotice();
  if (location && tellServer) fetch(location, { method: "DELETE", keepalive: true }).catch(() => {});
}

/** The server does not answer: it is restarting (or down). The feed brings the stream back when it is. */
function away() {
  restarted = played || restarted;
  retry("reconnecting", restarted ? RESTARTED : "The server cannot be reached. Retrying…");
}

/**
 * The server will not let this page watch: a private room without a viewer token, with one it refuses, or
 * the auth webhook said no. Say which, stop asking (every refusal spends the address's failure budget) and
 * offer to enter a token, which reloads the page with `?token=`.
 */
function askForToken(why) {
  clearTimeout(retryTimer);
  privateRoom = true;
  stopFeed();
  stop();
  const text = viewerToken
    ? `The viewer token in this link does not open “${roomId}” (${why}). Ask for a new link.`
    : /private/.test(why)
    ? `“${roomId}” is private: open it with the link that carries its viewer token (…?token=…).`
    : `You may not watch “${roomId}”: ${why}.`;
  show("private", text);
  if (!/private|token/.test(why)) return; // the webhook's refusal: a token would not help
  const token = prompt(`“${roomId}” is private (${why}). Viewer token:`);
  if (token?.trim()) {
    const url = new URL(location.href);
    url.searchParams.set("token", token.trim());
    location.replace(url.href);
  }
}

/** Not live: wait for the feed to announce the room when it is up, else ask again after a growing delay. */
function notLive() {
  clearTimeout(retryTimer);
  if (privateRoom) return;
  if (restarted) {
    show(
      "ended",
      "The server restarted and the stream has not come back yet. It will play here when it does.",
    );
  } else if (played) show("ended", "The stream ended. It will play here again if it comes back.");
  else {show(
      "missing",
      `“${roomId}” is not live right now. It will start playing here as soon as it goes live.`,
    );}
  if (!feedKnown) retryTimer = setTimeout(connect, nextDelay());
}

/** Shows `text` and tries again after a growing delay. */
function retry(state, text) {
  show(state, text);
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, nextDelay());
}

function nextDelay() {
  const delay = retryDelay;
  retryDelay = Math.min(retryDelay * 2, 10000);
  return delay;
}

/**
 * This browser cannot decode the room's codec (the server answered 406, or the browser lists no such
 * decoder): say what is missing and who can play it, and do not retry until the room changes.
 */
function cannotPlay(codec, serverReason) {
  clearTimeout(retryTimer);
  unplayable = feedRoom?.created_at ?? null;
  const has = browserCodecs("receiver");
  const name = codec ? codecName(codec) : codecsIn(serverReason ?? "")[0];
  const lacks = name
    ? `This browser cannot play ${name} video, which this room sends`
    : `This browser cannot play this room's video (the server says: ${serverReason})`;
  const can = has?.length ? ` (it plays ${listWords(has)})` : "";
  show("unplayable", `${lacks}${can}. ${name ? codecAdvice(name, "play") : ""}`.trim());
}

/** A takeover keeps the room and its viewers; the picture may jump, so say why for a few seconds. */
function noticeTakeover() {
  const count = feedRoom.takeovers;
  if (count === undefined || session.takeovers === count) return;
  const first = session.takeovers === undefined;
  session.takeovers = count;
  if (first) return;
  notice.textContent = "Another encoder took over this room.";
  notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(hideNotice, 5000);
}

function hideNotice() {
  clearTimeout(noticeTimer);
  notice.hidden = true;
}

function show(state, text = "") {
  message.dataset.state = state;
  message.hidden = state === "playing";
  messageText.textContent = text;
  messageMore.hidden = !["missing", "ended", "unplayable", "private"].includes(state);
}

function renderRoomInfo() {
  document.getElementById("live-badge").hidden = !feedRoom;
  document.getElementById("viewer-count").textContent = feedRoom ? viewers(feedRoom.viewer_count) : "";
  const details = feedRoom
    ? [describeVideo(feedRoom.video), `live ${liveFor(feedRoom.created_at)}`].filter(Boolean).join(" · ")
    : message.dataset.state === "reconnecting"
    ? ""
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

// Simulcast quality menu: the WHEP layer extension (a Link to POST {mediaId, encodingId} to) and its event
// stream of "layers" events ({"<mid>": {"layers": [{encodingId, width, height, bitrate}], "current"}}).
const LAYER_REL = /<([^>]+)>;\s*rel="urn:ietf:params:whep:ext:core:layer"/;
const EVENTS_REL = /<([^>]+)>;\s*rel="urn:ietf:params:whep:ext:core:server-sent-events"/;

/** Follows the session's layers into the quality menu; returns { close }. */
function followLayers(links) {
  const layerUrl = LAYER_REL.exec(links)?.[1];
  const eventsUrl = EVENTS_REL.exec(links)?.[1];
  if (!layerUrl || !eventsUrl || typeof EventSource === "undefined") return null;
  let mediaId = "";
  const events = new EventSource(apiUrl(eventsUrl));
  events.addEventListener("layers", (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    const [mid] = Object.keys(data);
    if (mid === undefined) return;
    mediaId = mid;
    showLayers(data[mid].layers ?? [], data[mid].current ?? null);
  });
  quality.onchange = () => {
    fetch(apiUrl(layerUrl), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ mediaId, encodingId: quality.value }),
    }).catch(() => {});
  };
  return {
    close() {
      events.close();
      quality.onchange = null;
      qualityControl.hidden = true;
    },
  };
}

/** The menu: Auto, then each layer by height (largest first); beside it the layer being received. */
function showLayers(layers, current) {
  qualityControl.hidden = layers.length < 2;
  const sorted = [...layers].sort((a, b) => (b.height ?? 0) - (a.height ?? 0));
  const wanted = ["", ...sorted.map((l) => l.encodingId)];
  const have = [...quality.options].map((o) => o.value);
  if (wanted.join("|") !== have.join("|")) {
    const chosen = quality.value;
    quality.replaceChildren(new Option("Auto", ""));
    for (const layer of sorted) {
      quality.append(new Option(layer.height ? `${layer.height}p` : layer.encodingId, layer.encodingId));
    }
    quality.value = wanted.includes(chosen) ? chosen : "";
  }
  const now = layers.find((l) => l.encodingId === current);
  qualityNow.textContent = now?.height ? `receiving ${now.height}p` : "";
}
