// Go live from the browser: camera or screen, WHIP POST to start, DELETE to stop.
//
// Endings are shown within a second: the server ends a publisher's session with BYE and DTLS close_notify
// (see onSessionEnd), and the page asks the server what happened. The room still live means another encoder
// took it over; no answer means the server is restarting, and the page publishes the same camera to the same
// room again as soon as it is back.
import {
  apiBase,
  apiIsElsewhere,
  apiUrl,
  bitrateMeter,
  browserCodecs,
  browserHas,
  codecAdvice,
  codecsIn,
  connected,
  describeError,
  encodableCodecs,
  linkPages,
  listWords,
  onSessionEnd,
  pageHref,
  preferH264,
  reason,
  roomState,
  sendOnlyCodec,
  serverAway,
} from "./api.js";

const form = document.getElementById("form");
const setup = document.getElementById("setup");
const tokenInput = document.getElementById("token");
const roomInput = document.getElementById("room");
const startButton = document.getElementById("start");
const stopButton = document.getElementById("stop");
const preview = document.getElementById("preview");
const previewEmpty = document.getElementById("preview-empty");
const onAir = document.getElementById("on-air");
const status = document.getElementById("status");
const codecSelect = document.getElementById("codec");
const simulcastBox = document.getElementById("simulcast");

// Simulcast: the picture at full, 1/2 and 1/4 size, so viewers on slow links or small screens get a smaller
// layer (the server picks per viewer). On by default where the browser can send RTP stream ids (RFC 8852).
const SIMULCAST_LAYERS = [
  { rid: "h" },
  { rid: "m", scaleResolutionDownBy: 2 },
  { rid: "l", scaleResolutionDownBy: 4 },
];
const canSimulcast = typeof RTCRtpSender !== "undefined" &&
  (RTCRtpSender.getCapabilities?.("video")?.headerExtensions ?? []).some((e) =>
    e.uri.endsWith("rtp-stream-id")
  );
simulcastBox.checked = canSimulcast;
simulcastBox.disabled = !canSimulcast;
for (const mime of encodableCodecs()) {
  const name = mime.replace("video/", "");
  codecSelect.append(new Option(name === "H264" ? "H.264" : name === "H265" ? "H.265" : name, mime));
}

// The token is stored per API base, so a link with a different ?api= never receives it unasked.
const TOKEN_KEY = `whip-token:${apiBase}`;
const RESTARTED = "The server restarted — reconnecting…";
const LOST = "The connection to the server was lost — reconnecting…";

/**
 * While publishing: { stream, source, token, roomId, pc, location, detach, retryTimer }. `pc` is null while
 * the page waits for a restarting server, with the camera kept open.
 */
let live = null;
let busy = false;
let statsTimer;

/** A refused WHIP POST: its status and the server's one-line reason. */
class Refused extends Error {
  constructor(status, why) {
    super(why);
    this.status = status;
  }
}

linkPages();
tokenInput.value = localStorage.getItem(TOKEN_KEY) ?? "";
roomInput.value = new URLSearchParams(location.search).get("room") ?? "";
// Browsers only offer cameras and screens to secure pages (HTTPS, or http://localhost).
if (!navigator.mediaDevices?.getUserMedia) {
  say("error", "This browser does not offer a camera to this page: open it over HTTPS or on localhost.");
  startButton.disabled = true;
}
if (!navigator.mediaDevices?.getDisplayMedia) {
  form.querySelector('input[value="screen"]').closest("label").hidden = true; // phones cannot share a screen
}
if (apiIsElsewhere) {
  const note = document.getElementById("api-note");
  note.textContent = `Streams go to ${apiBase}. Only enter your token if you trust that server.`;
  note.hidden = false;
}
for (const input of [tokenInput, roomInput]) {
  input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  start();
});
stopButton.addEventListener("click", () => stop("Stopped."));
addEventListener("pagehide", () => stop());

async function start() {
  if (live || busy) return;
  const token = tokenInput.value.trim();
  const room = roomInput.value.trim();
  if (!token) return fail("Enter your stream key or token first.", tokenInput);
  if (room && !roomInput.checkValidity()) {
    return fail("Room names use letters, digits, - and _ only.", roomInput);
  }
  localStorage.setItem(TOKEN_KEY, token);
  setBusy(true);
  say("working", "Starting…");
  const source = form.elements.source.value;
  let stream;
  try {
    stream = source === "screen"
      ? await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 30 }, audio: true })
      : await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
        audio: true,
      });
  } catch (error) {
    setBusy(false);
    return fail(`No ${source === "screen" ? "screen" : "camera"}: ${error.message}`);
  }
  preview.srcObject = stream;
  previewEmpty.hidden = true;
  const current = { stream, source, token, roomId: room || undefined, pc: null };
  live = current;
  try {
    await openSession(current);
  } catch (error) {
    if (live !== current) return; // stopped meanwhile
    stop();
    const keyRefused = error.status === 401 || error.status === 403;
    return fail(`Could not go live: ${explain(error)}`, keyRefused ? tokenInput : undefined);
  }
  setBusy(false);
  // The browser's own "Stop sharing" button ends the screen track.
  stream.getVideoTracks()[0].onended = () => stop("Screen sharing ended.");
  onLive(current);
}

/** One WHIP session for `current.stream`: POST the offer, apply the answer, wait until media flows. */
async function openSession(current) {
  const pc = new RTCPeerConnection();
  current.pc = pc;
  try {
    const videoTrack = current.stream.getVideoTracks()[0];
    if (!videoTrack) throw new Error("the source has no video");
    // Screen content favours sharp text over motion when the bandwidth is short.
    if (current.source === "screen") videoTrack.contentHint = "detail";
    const video = pc.addTransceiver(videoTrack, {
      direction: "sendonly",
      streams: [current.stream],
      ...(simulcastBox.checked ? { sendEncodings: SIMULCAST_LAYERS } : {}),
    });
    if (codecSelect.value) sendOnlyCodec(video, codecSelect.value);
    else preferH264(video, "sender");
    for (const track of current.stream.getAudioTracks()) {
      pc.addTransceiver(track, { direction: "sendonly", streams: [current.stream] });
    }
    await pc.setLocalDescription(await pc.createOffer());
    const query = current.roomId ? `?room=${encodeURIComponent(current.roomId)}` : "";
    const response = await fetch(apiUrl(`/whip${query}`), {
      method: "POST",
      headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${current.token}` },
      body: pc.localDescription.sdp,
    });
    if (response.status !== 201) {
      const why = await reason(response);
      throw serverAway(response) ? new TypeError(why) : new Refused(response.status, why);
    }
    const location = response.headers.get("Location");
    current.location = location ? apiUrl(location) : null;
    if (current.pc !== pc) {
      // Stopped while the POST was under way: end the session it made.
      if (current.location) deleteSession(current.location, current.token);
      throw new Error("stopped");
    }
    current.roomId = response.headers.get("X-Room-Id") ?? current.roomId;
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    current.detach = onSessionEnd(pc, (why) => sessionEnded(current, pc, why));
    // Without this Chromium first drops the resolution of a detailed picture and takes ~10 s to come back.
    const parameters = video.sender.getParameters();
    parameters.degradationPreference = "maintain-resolution";
    await video.sender.setParameters(parameters).catch(() => {});
    await connected(pc);
  } catch (error) {
    if (current.pc === pc) {
      current.detach?.();
      current.pc = null;
    }
    pc.close();
    throw error;
  }
}

/** Why a WHIP POST failed, in words for the person at the camera. */
function explain(error) {
  if (!(error instanceof Refused)) return `${describeError(error)}.`;
  if (error.status === 401 || error.status === 403) return `the stream key was refused (${error.message}).`;
  if (error.status !== 406) return `${error.message}.`;
  // 406: no video codec the server takes. Say which of the server's codecs this browser cannot send.
  const has = browserCodecs("sender") ?? [];
  const lacking = codecsIn(error.message).filter((codec) => browserHas(codec, "sender") === false);
  if (lacking.length === 0) return `the server refused the video: ${error.message}.`;
  const sends = has.length ? ` (it sends ${listWords(has)})` : "";
  const advice = lacking.map((codec) => codecAdvice(codec, "send")).filter(Boolean).join(" ");
  return `this server takes ${listWords(lacking)} video, which this browser cannot send${sends}. ${advice}`
    .trim();
}

function onLive(current) {
  onAir.hidden = false;
  setup.hidden = true;
  startButton.hidden = true;
  document.title = `● Live: ${current.roomId}`;
  const link = document.createElement("a");
  link.href = pageHref("watch", current.roomId);
  link.target = "_blank";
  link.textContent = "open the watch page";
  status.dataset.state = "live";
  status.replaceChildren(`You are live in room “${current.roomId}”. Share it: `, link, ".");
  clearInterval(statsTimer);
  statsTimer = setInterval(updateStats, 1000);
}

/** The server ended the session (or the network is gone): find out why, say so, reconnect if it restarts. */
async function sessionEnded(current, pc, why) {
  if (live !== current || current.pc !== pc) return;
  current.pc = null;
  pc.close();
  stopStats();
  // ICE failing is our network, not the server ending the session (a takeover always sends close_notify):
  // publish again, which also takes over our own stale session if the server still holds it.
  if (why === "failed") return reconnect(current, 0, LOST);
  const state = await roomState(current.roomId);
  if (live !== current) return; // stopped meanwhile
  if (state === "live") {
    stop(
      "Another encoder took over this room, so this page stopped sending. Start again to take it back.",
      "ended",
    );
  } else if (state === "unreachable") {
    reconnect(current, 0, RESTARTED);
  } else {
    stop("The server ended this stream.", "ended");
  }
}

/** Waits for the server to come back, then publishes the same source to the same room again. */
function reconnect(current, attempt, text) {
  onAir.hidden = true;
  document.title = "Reconnecting…";
  say("reconnecting", text);
  current.retryTimer = setTimeout(async () => {
    if (live !== current) return;
    try {
      await openSession(current);
    } catch (error) {
      if (live !== current) return;
      if (serverAway(error)) return reconnect(current, attempt + 1, text);
      return stop(`Could not reconnect: ${explain(error)}`, "error");
    }
    if (live === current) onLive(current);
  }, Math.min(500 * 2 ** attempt, 5000));
}

/** Stops publishing: DELETE the session, release the devices, show `text` (if any) as the status. */
function stop(text, state = "idle") {
  stopStats();
  if (!live) return;
  const current = live;
  const { pc, stream, location, token, detach, retryTimer } = current;
  live = null;
  current.pc = null;
  clearTimeout(retryTimer);
  if (pc) {
    detach?.();
    pc.close();
    if (location) deleteSession(location, token);
  }
  for (const track of stream.getTracks()) track.stop();
  resetPreview();
  setBusy(false);
  onAir.hidden = true;
  setup.hidden = false;
  startButton.hidden = false;
  document.title = "Go live";
  for (const id of ["bitrate", "resolution", "fps"]) document.getElementById(id).textContent = "–";
  if (text) say(state, text);
  else if (status.dataset.state === "live" || status.dataset.state === "reconnecting") say("idle", "");
}

/** DELETE a WHIP session (keepalive: this may run while the page closes). */
function deleteSession(location, token) {
  fetch(location, { method: "DELETE", headers: { Authorization: `Bearer ${token}` }, keepalive: true })
    .catch(() => {});
}

function stopStats() {
  clearInterval(statsTimer);
  sendRate.reset();
}

function resetPreview() {
  preview.srcObject = null;
  previewEmpty.hidden = false;
}

function setBusy(on) {
  busy = on;
  startButton.disabled = on || live !== null;
  stopButton.disabled = live === null;
  for (const input of form.querySelectorAll("input, select")) input.disabled = on || live !== null;
}

function say(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function fail(text, field) {
  say("error", text);
  if (field) {
    field.setAttribute("aria-invalid", "true");
    field.focus();
  }
}

const sendRate = bitrateMeter();

async function updateStats() {
  if (!live) return;
  const report = await live.pc.getStats();
  let bytes = 0;
  let videoOut;
  report.forEach((s) => {
    if (s.type !== "outbound-rtp") return;
    bytes += s.bytesSent ?? 0;
    // With simulcast each layer is an outbound-rtp of its own: the largest picture is the one to show.
    if (s.kind === "video" && (!videoOut || (s.frameWidth ?? 0) > (videoOut.frameWidth ?? 0))) videoOut = s;
  });
  const kbps = sendRate(bytes);
  if (kbps !== undefined) document.getElementById("bitrate").textContent = `${kbps} kbit/s`;
  if (videoOut?.frameWidth) {
    document.getElementById("resolution").textContent = `${videoOut.frameWidth}×${videoOut.frameHeight}`;
  }
  if (videoOut?.framesPerSecond !== undefined) {
    document.getElementById("fps").textContent = `${Math.round(videoOut.framesPerSecond)}`;
  }
}
