// Shared by the three pages: where the API is, the live room feed, and small formatting helpers.
//
// API base, first match wins:
//   1. `?api=https://media.example.com` on the page URL (kept on links between the pages);
//   2. `<meta name="api-base" content="https://media.example.com">` in the HTML (set it when web/ is copied
//      to a static host; the API server must then allow that origin with FRONTEND_URL);
//   3. the page's own origin (the server serves these pages itself).

const params = new URLSearchParams(location.search);
const apiParam = params.get("api");
const metaBase = document.querySelector('meta[name="api-base"]')?.getAttribute("content");

/** Origin + path prefix of the API, without a trailing slash. */
export const apiBase = normalizeBase(apiParam || metaBase || location.origin);

/** True when the API is not the page's own origin (shown on the publish page before a token is sent). */
export const apiIsElsewhere = new URL(apiBase).origin !== location.origin;

/** A viewer token from `?token=` (private rooms); sent with WHEP, the room feed and room lookups. */
export const viewerToken = params.get("token")?.trim() ?? "";

/** `path` with `?token=<viewer token>` added when the page has one. */
export function withToken(path) {
  if (!viewerToken) return path;
  return `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(viewerToken)}`;
}

/** An absolute URL for an API path such as "/whip" or a relative URL the API returned. */
export function apiUrl(path) {
  return new URL(path.startsWith("/") ? apiBase + path : path, apiBase + "/").href;
}

/** The href of another page; `/watch/<id>` when served by our server, `watch.html?room=<id>` otherwise. */
export function pageHref(page, roomId) {
  const serverRoutes = document.querySelector('meta[name="ui-routes"]')?.getAttribute("content") === "server";
  const query = new URLSearchParams();
  let path;
  if (serverRoutes) {
    path = page === "lobby" ? "/" : page === "watch" ? `/watch/${encodeURIComponent(roomId)}` : `/${page}`;
  } else {
    path = page === "lobby" ? "index.html" : `${page}.html`;
    if (roomId !== undefined) query.set("room", roomId);
  }
  if (apiParam) query.set("api", apiParam);
  const qs = query.toString();
  return qs ? `${path}?${qs}` : path;
}

/** Points every `<a data-page="lobby|publish">` of the page at that page. */
export function linkPages() {
  for (const link of document.querySelectorAll("a[data-page]")) link.href = pageHref(link.dataset.page);
}

function normalizeBase(value) {
  try {
    const url = new URL(value, location.href);
    return (url.origin + url.pathname).replace(/\/+$/, "");
  } catch {
    return location.origin;
  }
}

/**
 * Follows `GET /notifications` (each event is the `/rooms` JSON). `onRooms(rooms)` gets every snapshot,
 * `onStatus("live" | "reconnecting")` the state of the feed. EventSource retries dropped connections by
 * itself, but gives up for good on an HTTP error status, so that case is retried here with a backoff.
 * Returns a function that stops the feed.
 */
export function followRooms(onRooms, onStatus = () => {}) {
  let source;
  let timer;
  let delay = 1000;
  const open = () => {
    source = new EventSource(apiUrl(withToken("/notifications")));
    source.onopen = () => {
      delay = 1000;
      onStatus("live");
    };
    source.onmessage = (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      if (Array.isArray(data?.rooms)) onRooms(data.rooms);
    };
    source.onerror = () => {
      onStatus("reconnecting");
      if (source.readyState === EventSource.CLOSED) {
        timer = setTimeout(open, delay);
        delay = Math.min(delay * 2, 30000);
      }
    };
  };
  open();
  return () => {
    clearTimeout(timer);
    source.close();
  };
}

/** "1280×720 · 30 fps", or "" while the server does not know yet. */
export function describeVideo(video) {
  const parts = [];
  if (video?.width && video?.height) parts.push(`${video.width}×${video.height}`);
  if (video?.fps) parts.push(`${Math.round(video.fps)} fps`);
  return parts.join(" · ");
}

/** "just now", "4 min", "1 h 05 min" for the time since an ISO date. */
export function liveFor(isoDate, now = Date.now()) {
  const minutes = Math.floor((now - Date.parse(isoDate)) / 60000);
  if (!(minutes >= 1)) return "just now";
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** "1 viewer", "3 viewers". */
export function viewers(count) {
  return `${count} ${count === 1 ? "viewer" : "viewers"}`;
}

/** Video codecs the server forwards, as browsers name them, in the server's default order. */
export const VIDEO_CODECS = ["video/H264", "video/AV1", "video/VP9", "video/VP8", "video/H265"];

/** The codecs of {@link VIDEO_CODECS} this browser can encode. */
export function encodableCodecs() {
  const caps = globalThis.RTCRtpSender?.getCapabilities?.("video");
  if (!caps) return [];
  const have = new Set(caps.codecs.map((c) => c.mimeType.toLowerCase()));
  return VIDEO_CODECS.filter((mime) => have.has(mime.toLowerCase()));
}

/** Makes a sending transceiver offer only `mimeType` (with its retransmission stream). */
export function sendOnlyCodec(transceiver, mimeType) {
  const caps = RTCRtpSender.getCapabilities?.("video");
  if (!caps || !transceiver.setCodecPreferences) return;
  const wanted = mimeType.toLowerCase();
  const codecs = caps.codecs.filter((c) => [wanted, "video/rtx"].includes(c.mimeType.toLowerCase()));
  if (codecs.length > 1) transceiver.setCodecPreferences(codecs);
}

/** Puts H.264 first in a video transceiver's codec list (the server's default first choice). */
export function preferH264(transceiver, direction = "receiver") {
  const caps = (direction === "sender" ? RTCRtpSender : RTCRtpReceiver).getCapabilities?.("video");
  if (!caps || !transceiver.setCodecPreferences) return;
  const h264 = caps.codecs.filter((c) => c.mimeType.toLowerCase() === "video/h264");
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== "video/h264");
  if (h264.length > 0) transceiver.setCodecPreferences([...h264, ...rest]);
}

/** Resolves once the peer connection is connected; rejects if it fails or `ms` pass first. */
export function connected(pc, ms = 15000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error("the media connection timed out")), ms);
    const check = () => {
      if (pc.connectionState === "connected") finish();
      else if (pc.connectionState === "failed" || pc.connectionState === "closed") {
        finish(new Error(`the media connection ${pc.connectionState}`));
      }
    };
    const finish = (error) => {
      clearTimeout(timer);
      pc.removeEventListener("connectionstatechange", check);
      if (error) reject(error);
      else resolve();
    };
    pc.addEventListener("connectionstatechange", check);
    check();
  });
}

/**
 * Calls `onEnd("closed" | "failed")` once when the media session ends from the far side. The server ends a
 * session (DELETE, takeover, the publisher leaving, shutdown) with an RTCP BYE and a DTLS close_notify; the
 * browser then closes the DTLS transport at once, while `connectionState` stays "connected" until ICE
 * consent expires 10–30 s later. So the transport's state is watched, plus tracks ending (BYE) and the
 * connection failing (the network is gone). Call after setRemoteDescription; returns a function that stops
 * watching (call it before closing the connection yourself).
 */
export function onSessionEnd(pc, onEnd) {
  const transports = new Set();
  const tracks = [];
  for (const transceiver of pc.getTransceivers()) {
    if (transceiver.sender.transport) transports.add(transceiver.sender.transport);
    if (transceiver.receiver.transport) transports.add(transceiver.receiver.transport);
    if (transceiver.direction === "recvonly") tracks.push(transceiver.receiver.track);
  }
  const onTransport = (event) => {
    const state = event.target.state;
    if (state === "closed" || state === "failed") end(state);
  };
  const onTrackEnded = () => end("closed");
  const onConnection = () => {
    if (pc.connectionState === "failed") end("failed");
  };
  const detach = () => {
    for (const transport of transports) transport.removeEventListener("statechange", onTransport);
    for (const track of tracks) track.removeEventListener("ended", onTrackEnded);
    pc.removeEventListener("connectionstatechange", onConnection);
  };
  const end = (why) => {
    detach();
    onEnd(why);
  };
  for (const transport of transports) transport.addEventListener("statechange", onTransport);
  for (const track of tracks) track.addEventListener("ended", onTrackEnded);
  pc.addEventListener("connectionstatechange", onConnection);
  return detach;
}

/**
 * What the server says about a room right now: "live", "absent" (the server answers and does not list it)
 * or "unreachable" (no answer within 3 s, or a proxy's 502/503/504: the server is down or restarting).
 * After a session ended this tells "the stream ended" from "taken over" from "the server went away".
 */
export async function roomState(roomId) {
  try {
    const response = await fetch(apiUrl(withToken(`/rooms/${encodeURIComponent(roomId)}`)), {
      cache: "no-store",
      signal: AbortSignal.timeout(3000),
    });
    await response.body?.cancel();
    if (response.ok) return "live";
    return response.status >= 500 ? "unreachable" : "absent";
  } catch {
    return "unreachable";
  }
}

/** True for a failed request that says the server is away (no answer, or a gateway's 502/503/504). */
export function serverAway(errorOrResponse) {
  if (errorOrResponse instanceof Response) return [502, 503, 504].includes(errorOrResponse.status);
  // fetch rejects with a TypeError ("Failed to fetch", "NetworkError…") when nothing answers.
  return errorOrResponse instanceof TypeError || errorOrResponse?.name === "TimeoutError";
}

/** The message of an error in words for people: fetch's "Failed to fetch" is not one. */
export function describeError(error) {
  return serverAway(error) ? "the server cannot be reached" : String(error?.message ?? error);
}

/** The server's one-line reason for a failed request, or its status. */
export async function reason(response) {
  const text = (await response.text().catch(() => "")).trim().split("\n")[0];
  return text || `HTTP ${response.status}`;
}

// --- video codecs: what this browser has, in words ----------------------------------------------------------

const CODEC_NAMES = { h264: "H.264", h265: "H.265", vp8: "VP8", vp9: "VP9", av1: "AV1" };

// Which browsers play or send each codec over WebRTC (2025), for the message when this one cannot.
const CODEC_BROWSERS = {
  h264: "Chrome, Edge and Safari {verb} H.264; Firefox does once its OpenH264 plugin is enabled " +
    "(about:addons → Plugins).",
  vp8: "Every current browser can {verb} VP8.",
  vp9: "Chrome, Edge and Firefox {verb} VP9.",
  av1: "Chrome and Edge {verb} AV1.",
  h265: "Safari {verb}s H.265.",
};

/** "h264" for "H264", "H.264", "video/H264", "avc1"-less names the rooms API or a reason uses. */
function codecKey(name) {
  return String(name).toLowerCase().replace(/^video\//, "").replace(".", "");
}

/** "H.264" for "H264" (the rooms API's name), the name itself when unknown. */
export function codecName(codec) {
  return CODEC_NAMES[codecKey(codec)] ?? String(codec);
}

/** The video codecs this browser can receive ("receiver") or send ("sender"), in words, e.g. ["VP8", "VP9"]. */
export function browserCodecs(direction) {
  const caps = (direction === "sender" ? globalThis.RTCRtpSender : globalThis.RTCRtpReceiver)
    ?.getCapabilities?.("video");
  if (!caps) return undefined;
  const names = caps.codecs.map((c) => codecKey(c.mimeType)).filter((key) => key in CODEC_NAMES);
  return [...new Set(names)].map((key) => CODEC_NAMES[key]);
}

/** Whether this browser can receive/send `codec` (a rooms API name); undefined when it cannot tell. */
export function browserHas(codec, direction) {
  const codecs = browserCodecs(direction);
  return codecs === undefined ? undefined : codecs.includes(codecName(codec));
}

/** One sentence naming the browsers that can play ("play") or send ("send") `codec`, or "" when unknown. */
export function codecAdvice(codec, verb) {
  return CODEC_BROWSERS[codecKey(codec)]?.replace("{verb}", verb) ?? "";
}

/** The codec names a server's reason mentions ("… no H.264 with …" → ["H.264"]). */
export function codecsIn(text) {
  const found = String(text).match(/\b(H\.?264|H\.?265|VP8|VP9|AV1)\b/gi) ?? [];
  return [...new Set(found.map(codecName))];
}

/** "H.264, VP8 and VP9". */
export function listWords(words) {
  return words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;
}

/**
 * Turns a growing byte counter from getStats() into kbit/s: each call returns the rate since the previous
 * call, or undefined on the first call (and after `reset()`).
 */
export function bitrateMeter() {
  let last;
  const meter = (bytes) => {
    const now = performance.now();
    const kbps = last && now > last.at ? Math.round(((bytes - last.bytes) * 8) / (now - last.at)) : undefined;
    last = { bytes, at: now };
    return kbps;
  };
  meter.reset = () => (last = undefined);
  return meter;
}
