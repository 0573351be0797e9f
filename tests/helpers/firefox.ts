/**
 * Headless Firefox ESR for tests (Debian `firefox-esr`), driven over WebDriver BiDi by puppeteer-core (never
 * downloads a browser), with a fake camera and microphone. Firefox never gathers loopback ICE candidates
 * (media.peerconnection.ice.loopback made no difference in 153 ESR), so it runs inside the test's private
 * network namespace next to the server, and puppeteer reaches its BiDi port through the namespace's port
 * forward.
 */
import puppeteer, { type Browser } from "puppeteer-core";
import type { NetNamespace } from "./netns.ts";
import { freePort } from "./server_process.ts";

/** Where Firefox is (FIREFOX_PATH overrides /usr/bin/firefox-esr). */
export const FIREFOX_PATH = Deno.env.get("FIREFOX_PATH") ?? "/usr/bin/firefox-esr";

const PREFS: Record<string, boolean | number | string> = {
  "media.navigator.streams.fake": true,
  "media.navigator.permission.disabled": true,
  "media.autoplay.default": 0,
  "media.peerconnection.ice.obfuscate_host_addresses": false,
  // No first-run pages, update checks, telemetry or plugin downloads from the test browser.
  "browser.shell.checkDefaultBrowser": false,
  "browser.startup.homepage_override.mstone": "ignore",
  "browser.aboutwelcome.enabled": false,
  "app.update.enabled": false,
  "app.update.auto": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "datareporting.healthreport.uploadEnabled": false,
  "toolkit.telemetry.enabled": false,
  "media.gmp-manager.url": "",
  "media.gmp-gmpopenh264.enabled": false,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "extensions.update.enabled": false,
  "remote.prefs.recommended": true,
};

/** A Firefox inside `netns`; `close()` ends it and removes its profile. */
export interface NamespacedFirefox {
  browser: Browser;
  close(): Promise<void>;
}

/** Launches headless Firefox inside `netns`. */
export async function launchFirefox(netns: NetNamespace): Promise<NamespacedFirefox> {
  const profile = await Deno.makeTempDir({ prefix: "firefox-profile-" });
  await Deno.writeTextFile(
    `${profile}/user.js`,
    Object.entries(PREFS).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});`).join(
      "\n",
    ),
  );
  // Firefox gathers no host candidates at all without a default route. The route points into the
  // namespace's own veth pair (v0, holding 192.0.2.1): nothing can leave the namespace through it.
  const route = netns.command("ip", ["route", "replace", "default", "dev", "v0"]);
  const routed = await new Deno.Command(route.program, { args: route.args, stderr: "piped" }).output();
  if (!routed.success) {
    throw new Error(`ip route in the namespace: ${new TextDecoder().decode(routed.stderr)}`);
  }
  const port = await netns.forwardPort(freePort("tcp"));
  const { program, args } = netns.command(FIREFOX_PATH, [
    ...["--headless", "--no-remote", "--profile", profile, `--remote-debugging-port=${port}`, "about:blank"],
  ]);
  const child = new Deno.Command(program, { args, stdout: "null", stderr: "piped" }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let log = "";
  while (!log.includes("WebDriver BiDi listening on")) {
    const { value, done } = await stderr.read();
    if (done) throw new Error(`Firefox exited before its BiDi port opened:\n${log}`);
    log += value;
  }
  // Keep draining stderr so Firefox never blocks on a full pipe.
  (async () => {
    while (!(await stderr.read()).done) { /* discard */ }
  })().catch(() => {});
  const browser = await puppeteer.connect({
    browserWSEndpoint: `ws://127.0.0.1:${port}/session`,
    protocol: "webDriverBiDi",
  });
  return {
    browser,
    async close() {
      await browser.close().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}
