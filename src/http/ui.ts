/**
 * The built-in web pages (lobby, watch, publish) and their assets, read from `web/` next to the sources.
 *
 * Routes: `/` lobby, `/watch/<room id>` player, `/publish` go-live page, `/assets/<file>` scripts, styles and
 * icons. The `.html` names (`/index.html`, `/watch.html?room=<id>`, `/publish.html`) are served too, because
 * that is how the pages link to each other when `web/` is copied to a static host elsewhere.
 *
 * API base: the pages talk to the API on their own origin unless `<meta name="api-base" content="...">` in
 * the HTML or an `?api=<url>` query parameter names another one (see `web/assets/api.js`). The HTML files use
 * relative links so they also work from a static host; when this server serves a page it makes those links
 * absolute (`/watch/<id>` is one level down) and adds `<meta name="ui-routes" content="server">`, which tells
 * the scripts to link to `/watch/<id>` rather than `watch.html?room=<id>`.
 *
 * Unknown paths: {@link serveNotFoundPage} gives a browser (a GET that accepts `text/html`) `web/404.html` with
 * status 404, in the site's style; API clients keep the router's one-line text.
 *
 * Files are read lazily through a URL relative to this module, which also works inside a binary built with
 * `deno compile --include web/`, and kept in memory with a strong ETag; every response says `no-cache` so a
 * browser revalidates and gets a 304 while the file is unchanged.
 */

const WEB_DIR = new URL("../../web/", import.meta.url);

const PAGES: Record<string, string> = {
  "/": "index.html",
  "/index.html": "index.html",
  "/watch.html": "watch.html",
  "/publish": "publish.html",
  "/publish.html": "publish.html",
};

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  webmanifest: "application/manifest+json",
};

// One path segment of plain characters: no dots at the start, no slashes, no escapes, so a name can never
// leave web/assets/ (decoded or not).
const ASSET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/;

// Scripts come only from our origin; fetch/EventSource/images may go to an API on another origin.
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob: http: https:",
  "connect-src 'self' http: https:",
  "media-src 'self' blob:",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

// Relative links in web/*.html and what they become when this server serves the page. (A `<base href="/">`
// would do the same but also send in-page `#fragment` links to the lobby.)
const SERVER_LINKS: [string, string][] = [
  ['="assets/', '="/assets/'],
  ['href="index.html"', 'href="/"'],
  ['href="publish.html"', 'href="/publish"'],
  ['<meta name="api-base"', '<meta name="ui-routes" content="server">\n    <meta name="api-base"'],
];

interface CachedFile {
  body: Uint8Array<ArrayBuffer>;
  etag: string;
  type: string;
}

const cache = new Map<string, Promise<CachedFile | undefined>>();

/** Serves a page or asset, or returns undefined when the path is not part of the UI. */
export function serveUi(req: Request, url: URL): Response | Promise<Response> | undefined {
  const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, "") : url.pathname;
  let file: string | undefined = PAGES[path];
  if (file === undefined && /^\/watch\/[^/]+$/.test(path)) file = "watch.html";
  if (file === undefined && path.startsWith("/assets/")) {
    const name = path.slice("/assets/".length);
    if (!ASSET_NAME.test(name) || !(extension(name) in TYPES)) return notFound();
    file = `assets/${name}`;
  }
  if (file === undefined) return undefined;
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response(`method ${req.method} not allowed\n`, {
      status: 405,
      headers: { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" },
    });
  }
  return respond(req, file);
}

/**
 * The "page not found" page (status 404) for a browser navigating to an unknown path, or undefined for an API
 * client (no `text/html` in `Accept`, or not GET/HEAD), which gets the router's one-line text instead.
 */
export function serveNotFoundPage(req: Request): Promise<Response> | undefined {
  if (req.method !== "GET" && req.method !== "HEAD") return undefined;
  if (!/\btext\/html\b/i.test(req.headers.get("Accept") ?? "")) return undefined;
  return respond(req, "404.html", 404);
}

async function respond(req: Request, file: string, status = 200): Promise<Response> {
  const cached = await load(file);
  if (!cached) return notFound();
  const headers = new Headers({
    "Content-Type": cached.type,
    "Cache-Control": "no-cache",
    ETag: cached.etag,
    "X-Content-Type-Options": "nosniff",
  });
  if (file.endsWith(".html")) {
    headers.set("Content-Security-Policy", CSP);
    headers.set("Referrer-Policy", "strict-origin-when-cross-origin");
  }
  if (status !== 200) {
    // An error page is not a resource to revalidate: no ETag, no 304.
    headers.delete("ETag");
    headers.set("Content-Length", String(cached.body.byteLength));
    return new Response(req.method === "HEAD" ? null : cached.body, { status, headers });
  }
  if (etagMatches(req.headers.get("If-None-Match"), cached.etag)) {
    return new Response(null, { status: 304, headers });
  }
  headers.set("Content-Length", String(cached.body.byteLength));
  return new Response(req.method === "HEAD" ? null : cached.body, { headers });
}

function load(file: string): Promise<CachedFile | undefined> {
  let entry = cache.get(file);
  if (!entry) {
    entry = read(file);
    cache.set(file, entry);
    // A missing file or a read error is not remembered, so the next request tries again.
    const forget = () => cache.delete(file);
    entry.then((found) => found || forget(), forget);
  }
  return entry;
}

async function read(file: string): Promise<CachedFile | undefined> {
  let body: Uint8Array<ArrayBuffer>;
  try {
    body = await Deno.readFile(new URL(file, WEB_DIR));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.IsADirectory) return undefined;
    throw e;
  }
  if (file.endsWith(".html")) {
    let html = new TextDecoder().decode(body);
    for (const [from, to] of SERVER_LINKS) html = html.replaceAll(from, to);
    body = new TextEncoder().encode(html);
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  let hex = "";
  for (const b of digest.subarray(0, 12)) hex += b.toString(16).padStart(2, "0");
  return { body, etag: `"${hex}"`, type: TYPES[extension(file)] };
}

function extension(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot < 0 ? "" : name.slice(dot + 1).toLowerCase();
}

/** RFC 9110 §13.1.2: weak comparison, a list of tags or `*`. */
function etagMatches(header: string | null, etag: string): boolean {
  if (header === null) return false;
  if (header.trim() === "*") return true;
  return header.split(",").some((tag) => tag.trim().replace(/^W\//, "") === etag);
}

function notFound(): Response {
  return new Response("no such file\n", {
    status: 404,
    headers: { "Content-Type": "text/plain; charset=utf-8" },
  });
}
