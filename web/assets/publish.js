// Go live from the browser: camera or screen, WHIP POST to start, DELETE to stop.
import {
  apiBase,
  apiIsElsewhere,
  apiUrl,
  bitrateMeter,
  connected,
  encodableCodecs,
  linkPages,
  pageHref,
  preferH264,
  reason,
  sendOnlyCodec,
} from "./api.js";

const form = document.getElementById("form");
const tokenInput = document.getElementById("token");
const roomInput = document.getElementById("room");
const startButton = document.getElementById("start");
const stopButton = document.getElementById("stop");
const preview = document.getElementById("preview");
const previewEmpty = document.getElementById("preview-empty");
const status = document.getElementById("status");
const codecSelect = document.getElementById("codec");
for (const mime of encodableCodecs()) {
  const name = mime.replace("video/", "");
  codecSelect.append(new Option(name === "H264" ? "H.264" : name === "H265" ? "H.265" : name, mime));
}

// The token is stored per API base, so a link with a different ?api= never receives it unasked.
const TOKEN_KEY = `whip-token:${apiBase}`;
let live = null; // { pc, stream, location, token } while publishing
let busy = false;
let statsTimer;

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
  if (!token) return fail("Enter the token first.", tokenInput);
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

  const pc = new RTCPeerConnection();
  try {
    const videoTrack = stream.getVideoTracks()[0];
    if (!videoTrack) throw new Error("the source has no video");
    // Screen content favours sharp text over motion when the bandwidth is short.
    if (source === "screen") videoTrack.contentHint = "detail";
    const video = pc.addTransceiver(videoTrack, { direction: "sendonly", streams: [stream] });
    if (codecSelect.value) sendOnlyCodec(video, codecSelect.value);
    else preferH264(video, "sender");
    for (const track of stream.getAudioTracks()) {
      pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    }
    await pc.setLocalDescription(await pc.createOffer());
    const query = room ? `?room=${encodeURIComponent(room)}` : "";
    const response = await fetch(apiUrl(`/whip${query}`), {
      method: "POST",
      headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
      body: pc.localDescription.sdp,
    });
    if (response.status !== 201) {
      const why = await reason(response);
      throw new Error(response.status === 401 ? `the token was refused (${why})` : why);
    }
    const location = response.headers.get("Location");
    const roomId = response.headers.get("X-Room-Id") ?? room;
    live = { pc, stream, location: location ? apiUrl(location) : null, token, roomId };
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    // Without this Chromium first drops the resolution of a detailed picture and takes ~10 s to come back.
    const parameters = video.sender.getParameters();
    parameters.degradationPreference = "maintain-resolution";
    await video.sender.setParameters(parameters).catch(() => {});
    await connected(pc);
  } catch (error) {
    if (live?.pc === pc) stop();
    else {
      pc.close();
      for (const track of stream.getTracks()) track.stop();
      resetPreview();
    }
    setBusy(false);
    return fail(`Could not go live: ${error.message}.`);
  }
  setBusy(false);
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed" || pc.connectionState === "closed") {
      stop("The connection to the server was lost.", "error");
    }
  };
  // The browser's own "Stop sharing" button ends the screen track.
  stream.getVideoTracks()[0].onended = () => stop("Screen sharing ended.");
  document.getElementById("on-air").hidden = false;
  document.title = `● Live: ${live.roomId}`;
  const link = document.createElement("a");
  link.href = pageHref("watch", live.roomId);
  link.target = "_blank";
  link.textContent = "open the watch page";
  status.dataset.state = "live";
  status.replaceChildren(`You are live in room “${live.roomId}”. Share it: `, link, ".");
  statsTimer = setInterval(updateStats, 1000);
}

/** Stops publishing: DELETE the session (keepalive: may run while the page closes), release the devices. */
function stop(text, state = "idle") {
  clearInterval(statsTimer);
  sendRate.reset();
  if (!live) return;
  const { pc, stream, location, token } = live;
  live = null;
  pc.onconnectionstatechange = null;
  pc.close();
  for (const track of stream.getTracks()) track.stop();
  if (location) {
    fetch(location, { method: "DELETE", headers: { Authorization: `Bearer ${token}` }, keepalive: true })
      .catch(() => {});
  }
  resetPreview();
  setBusy(false);
  document.getElementById("on-air").hidden = true;
  document.title = "Go live";
  for (const id of ["bitrate", "resolution", "fps"]) document.getElementById(id).textContent = "–";
  if (text) say(state, text);
}

function resetPreview() {
  preview.srcObject = null;
  previewEmpty.hidden = false;
}

function setBusy(on) {
  busy = on;
  startButton.disabled = on || live !== null;
  stopButton.disabled = live === null;
  for (const input of form.querySelectorAll("input")) input.disabled = on || live !== null;
}

function say(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function fail(text, focus) {
  say("error", text);
  focus?.focus();
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
    if (s.kind === "video") videoOut = s;
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
