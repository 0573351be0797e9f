/**
 * Session lifecycle against the real server: an RSA certificate from the seed's openssl command works with
 * Chromium, a viewer whose page goes away is freed, a publisher that goes away closes its room and viewers,
 * and bad configuration stops start-up with one line.
 */
import assert from "node:assert/strict";
import { startBrowserTest } from "./helpers/browser_test.ts";
import { startupRefusal } from "./helpers/server_process.ts";
import { receiveStats } from "./helpers/webrtc_clients.ts";
import { waitFor } from "./helpers/wait.ts";
import { selfSignedPem } from "./helpers/certificates.ts";

Deno.test({
  name: "RSA certificate, vanished viewer, vanished publisher",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const certsDir = await Deno.makeTempDir();
  await selfSignedPem(certsDir, { key: "rsa" });
  const test = await startBrowserTest({ CERTS_DIR: certsDir, CONSENT_TIMEOUT: "3" });
  const { server } = test;
  try {
    const rooms = async () => (await (await fetch(`${server.baseUrl}/rooms`)).json()).rooms;
    const { page: publisher } = await test.publish("rsa");
    const { page: viewer } = await test.watch("rsa");
    await waitFor(
      "frames over an RSA DTLS handshake",
      () => receiveStats(viewer),
      (s) => s.framesDecoded > 10,
    );
    await waitFor("viewer counted", rooms, (r) => r[0]?.viewer_count === 1);

    // The viewer's page disappears without a DELETE.
    await viewer.close();
    await waitFor("viewer freed", rooms, (r) => r[0]?.viewer_count === 0, 10000);

    // A second viewer; then a publisher takeover; then the publisher's page disappears: the room and the
    // viewer session end.
    const { page: viewer2 } = await test.watch("rsa");
    await waitFor("second viewer decoding", () => receiveStats(viewer2), (s) => s.framesDecoded > 5);

    // The encoder reconnects with a new WHIP session to the same room: it takes over, the viewer stays.
    const decodedBefore = (await receiveStats(viewer2)).framesDecoded;
    const { page: publisher2 } = await test.publish("rsa");
    await waitFor(
      "the replaced publisher to be disconnected",
      () => publisher.evaluate(() => (globalThis as unknown as { pc: RTCPeerConnection }).pc.connectionState),
      (s) => s !== "connected",
      10000,
    );
    await publisher.close();
    const resumed = await waitFor(
      "the viewer to keep decoding from the new publisher",
      () => receiveStats(viewer2),
      (s) => s.framesDecoded > decodedBefore + 30,
    );
    assert.equal(resumed.connectionState, "connected");
    const listed = await rooms();
    assert.equal(listed.length, 1);
    assert.equal(listed[0].viewer_count, 1);
    assert.match(server.logs(), /takes over room rsa/);
    await publisher2.close();
    await waitFor("room closed", rooms, (r) => r.length === 0, 10000);
    await waitFor(
      "viewer session ended",
      () => viewer2.evaluate(() => (globalThis as unknown as { pc: RTCPeerConnection }).pc.connectionState),
      (s) => s !== "connected",
      10000,
    );
    assert.match(server.logs(), /room rsa closed/);
  } catch (e) {
    console.error(server.logs());
    throw e;
  } finally {
    await test.close();
    await Deno.remove(certsDir, { recursive: true });
  }
});

Deno.test("bad configuration stops start-up with one clear line", async () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ TCP_PORT: "http" }, /^configuration error: TCP_PORT must be a port number/],
    [{ STORAGE_DIR: "/proc/forbidden/storage" }, /^configuration error: STORAGE_DIR: directory/],
    [{ UDP_ADDRESS: "not-an-ip" }, /^configuration error: UDP_ADDRESS/],
  ];
  for (const [env, expected] of cases) assert.match(await startupRefusal(env), expected);
});

Deno.test("--help lists every setting with its default", async () => {
  const main = new URL("../main.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-net", "--allow-all", main, "--help"],
    stdout: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  for (const name of ["TCP_PORT", "UDP_PORT", "WHIP_TOKEN", "PUBLIC_IP", "CERTS_DIR", "STORAGE_DIR"]) {
    assert.match(text, new RegExp(`${name}.*\\[default: `));
  }
});
