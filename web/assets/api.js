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
    source = new EventSource(apiUrl("/notifications"));
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

/** The server's one-line reason for a failed request, or its status. */
export async function reason(response) {
  const text = (await response.text().catch(() => "")).trim().split("\n")[0];
  return text || `HTTP ${response.status}`;
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
