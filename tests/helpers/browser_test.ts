/**
 * The preamble every browser end-to-end test shares: the real server as a process, headless Chromium, and
 * pages opened at the server's origin (so their fetches to /whip and /whep are same-origin), publishing or
 * watching. Inside a private network namespace when `netns` is given.
 */
import type { Browser, Page } from "playwright-core";
import { launchChromium, pageAt } from "./browser.ts";
import { type ServerOptions, type ServerProcess, startServerProcess } from "./server_process.ts";
import { publishFromPage, type PublishOptions, watchFromPage } from "./webrtc_clients.ts";

/** A running server and a Chromium driving it. */
export interface BrowserTest {
  server: ServerProcess;
  browser: Browser;
  /** A new page at the server's origin. */
  page(): Promise<Page>;
  /** A new page publishing its fake camera (and microphone) to `room` with the server's token. */
  publish(room: string, options?: Omit<PublishOptions, "room" | "token">): Promise<Published>;
  /** A new page watching `room` over WHEP. */
  watch(room: string): Promise<{ page: Page; location: string }>;
  /** Closes Chromium, then stops the server. */
  close(): Promise<void>;
}

/** A publishing page and its WHIP session. */
export interface Published {
  page: Page;
  location: string;
  roomId: string;
}

/** Starts the server with `env`, then Chromium (with `chromiumArgs`); stops the server if Chromium fails. */
export async function startBrowserTest(
  env: Record<string, string> = {},
  options: ServerOptions & { chromiumArgs?: string[] } = {},
): Promise<BrowserTest> {
  const server = await startServerProcess(env, options);
  let browser: Browser;
  try {
    browser = await launchChromium(options.chromiumArgs ?? [], options.netns);
  } catch (e) {
    await server.stop();
    throw e;
  }
  const page = () => pageAt(browser, server.baseUrl);
  return {
    server,
    browser,
    page,
    async publish(room, publishOptions = {}) {
      const p = await page();
      const session = await publishFromPage(p, { ...publishOptions, room, token: server.token });
      return { page: p, ...session };
    },
    async watch(room) {
      const p = await page();
      return { page: p, location: await watchFromPage(p, room) };
    },
    async close() {
      await browser.close().catch(() => {});
      await server.stop();
    },
  };
}
