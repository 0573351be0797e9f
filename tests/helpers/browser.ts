/** Headless Debian Chromium for tests, driven by playwright-core (never downloads a browser). */
import { type Browser, chromium, type Page } from "playwright-core";
import type { NetNamespace } from "./netns.ts";

/** Flags that give WebRTC a fake camera and microphone and keep Chromium off the network. */
export const CHROMIUM_ARGS = [
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--allow-loopback-in-peer-connection",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run",
  "--autoplay-policy=no-user-gesture-required",
];

/**
 * Launches the system Chromium (CHROMIUM_PATH overrides /usr/bin/chromium), with optional extra flags, inside
 * `netns` when given (to reach a server running there).
 */
export async function launchChromium(extraArgs: string[] = [], netns?: NetNamespace): Promise<Browser> {
  return await chromium.launch({
    executablePath: netns ? await netns.chromiumPath() : Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium",
    args: [...CHROMIUM_ARGS, ...extraArgs],
    headless: true,
  });
}

/** A new page of `browser` at the server's origin, so its fetches to /whip and /whep are same-origin. */
export async function pageAt(browser: Browser, baseUrl: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${baseUrl}/healthz`);
  return page;
}
