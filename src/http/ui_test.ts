import assert from "node:assert/strict";
import { serveNotFoundPage, serveUi } from "./ui.ts";

function get(path: string, init: RequestInit = {}): Promise<Response> | Response | undefined {
  const url = new URL(path, "http://ui.test");
  return serveUi(new Request(url, init), url);
}

async function must(path: string, init: RequestInit = {}): Promise<Response> {
  const response = await get(path, init);
  assert.ok(response, `${path} is a UI path`);
  return response;
}

Deno.test("serveUi: pages and assets carry their content type, no-cache and an ETag", async () => {
  const cases: [string, RegExp][] = [
    ["/", /^text\/html; charset=utf-8$/],
    ["/publish", /^text\/html/],
    ["/publish/", /^text\/html/],
    ["/watch/some-room_1", /^text\/html/],
    ["/watch.html", /^text\/html/],
    ["/index.html", /^text\/html/],
    ["/assets/style.css", /^text\/css/],
    ["/assets/api.js", /^text\/javascript/],
    ["/assets/lobby.js", /^text\/javascript/],
    ["/assets/watch.js", /^text\/javascript/],
    ["/assets/publish.js", /^text\/javascript/],
    ["/assets/icon.svg", /^image\/svg\+xml$/],
  ];
  for (const [path, type] of cases) {
    const response = await must(path);
    const body = await response.text();
    assert.equal(response.status, 200, path);
    assert.match(response.headers.get("content-type") ?? "", type, path);
    assert.equal(response.headers.get("cache-control"), "no-cache", path);
    assert.match(response.headers.get("etag") ?? "", /^"[0-9a-f]{24}"$/, path);
    assert.equal(response.headers.get("x-content-type-options"), "nosniff", path);
    assert.ok(body.length > 0, path);
  }
});

Deno.test("serveUi: HTML gets server links, the route marker and a CSP", async () => {
  const response = await must("/watch/abc");
  const html = await response.text();
  assert.match(html, /<meta name="ui-routes" content="server">/);
  assert.match(html, /src="\/assets\/watch\.js"/);
  assert.match(html, /href="\/assets\/style\.css"/);
  assert.match(html, /href="\/publish"/);
  assert.doesNotMatch(html, /="assets\//, "no relative asset link is left");
  assert.match(response.headers.get("content-security-policy") ?? "", /script-src 'self'/);
});

Deno.test("serveUi: If-None-Match with the current ETag answers 304 without a body", async () => {
  const first = await must("/assets/style.css");
  await first.body?.cancel();
  const etag = first.headers.get("etag")!;
  for (const header of [etag, `W/${etag}`, `"other", ${etag}`, "*"]) {
    const again = await must("/assets/style.css", { headers: { "If-None-Match": header } });
    assert.equal(again.status, 304, header);
    assert.equal(again.body, null);
    assert.equal(again.headers.get("etag"), etag);
  }
  const stale = await must("/assets/style.css", { headers: { "If-None-Match": '"stale"' } });
  assert.equal(stale.status, 200);
  await stale.body?.cancel();
});

Deno.test("serveUi: HEAD has the headers and no body; other methods are refused", async () => {
  const head = await must("/", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.body, null);
  assert.ok(Number(head.headers.get("content-length")) > 0);
  const post = await must("/publish", { method: "POST" });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET, HEAD");
  await post.body?.cancel();
});

Deno.test("serveUi: API and unknown paths are left to the router", () => {
  for (
    const path of [
      "/whip",
      "/whep/abc",
      "/rooms",
      "/rooms/x/thumbnail.jpg",
      "/notifications",
      "/healthz",
      "/x",
    ]
  ) {
    assert.equal(get(path), undefined, path);
  }
  assert.equal(get("/watch"), undefined);
  assert.equal(get("/watch/a/b"), undefined);
});

Deno.test("serveUi: names that could leave web/assets are refused", async () => {
  const refused = [
    "/assets/..%2F..%2Fdeno.json",
    "/assets/%2e%2e%2fdeno.json",
    "/assets/.hidden.css",
    "/assets/..%5Cdeno.json",
    "/assets/sub/style.css",
    "/assets/style.css%00.js",
    "/assets/missing.js",
    "/assets/deno.json",
  ];
  for (const path of refused) {
    const response = await get(path);
    assert.ok(response, path);
    assert.equal(response.status, 404, path);
    await response.body?.cancel();
  }
  // Dot segments are resolved by the URL parser before routing: this is the router's /deno.json, not ours.
  const url = new URL("http://ui.test/assets/../deno.json");
  assert.equal(url.pathname, "/deno.json");
  assert.equal(serveUi(new Request(url), url), undefined);
});

Deno.test("serveNotFoundPage: a browser gets the site's 404 page, an API client nothing (the router's text)", async () => {
  const browser = new Request("http://ui.test/nope", {
    headers: { Accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" },
  });
  const page = await serveNotFoundPage(browser);
  assert.ok(page);
  assert.equal(page.status, 404);
  assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
  assert.equal(page.headers.get("etag"), null);
  assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'/);
  const html = await page.text();
  assert.match(html, /<h1>Page not found<\/h1>/);
  assert.match(html, /href="\/assets\/style\.css"/);
  assert.match(html, /href="\/"/);

  assert.equal(serveNotFoundPage(new Request("http://ui.test/nope")), undefined, "no Accept");
  assert.equal(
    serveNotFoundPage(new Request("http://ui.test/nope", { headers: { Accept: "application/json" } })),
    undefined,
  );
  assert.equal(
    serveNotFoundPage(
      new Request("http://ui.test/nope", { method: "POST", headers: { Accept: "text/html" } }),
    ),
    undefined,
  );
});
