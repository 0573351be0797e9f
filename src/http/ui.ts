/** The built-in web pages (lobby, watch, publish) and their assets. Filled in by the web UI work. */

/** Serves a page or asset, or returns undefined when the path is not part of the UI. */
export function serveUi(_req: Request, _url: URL): Response | Promise<Response> | undefined {
  return undefined;
}
