/**
 * Loss recovery: a Chromium viewer watches a Chromium publisher through a relay that drops 5 % of the
 * server-to-viewer datagrams and delays both directions by 50 ms (kernel netem is not available on these
 * machines, so the relay does it in user space with a seeded PRNG). Prints the viewer's freezes, NACKs and
 * decoded frames over LOSS_SECONDS with retransmissions on (default) and off (RETRANSMISSIONS=off).
 * Run: deno run --unstable-net --allow-all tests/bench/loss_recovery.ts
 */
import { launchChromium } from "../helpers/browser.ts";
import { startServerProcess } from "../helpers/server_process.ts";
import { seededRandom, startLossyRelay } from "../helpers/lossy_relay.ts";
import {
  publishFromPage,
  receiveStats,
  type RecoveryStats,
  recoveryStats,
  routeAnswersThrough,
  watchFromPage,
} from "../helpers/webrtc_clients.ts";

const SECONDS = Number(Deno.env.get("LOSS_SECONDS") ?? "20");
const LOSS = Number(Deno.env.get("LOSS") ?? "0.05");
const DELAY = Number(Deno.env.get("DELAY_MS") ?? "50");

type Outcome = RecoveryStats & { dropped: number };

async function run(env: Record<string, string>): Promise<Outcome> {
  const server = await startServerProcess(env);
  const browser = await launchChromium();
  const relay = startLossyRelay("127.0.0.2", { hostname: "127.0.0.1", port: server.udpPort }, {
    downstreamLoss: LOSS,
    delayMs: DELAY,
    random: seededRandom(42),
  });
  try {
    const publisher = await browser.newPage();
    await publisher.goto(`${server.baseUrl}/healthz`);
    await publishFromPage(publisher, { token: server.token, room: "loss", width: 1280, height: 720 });
    const viewer = await browser.newPage();
    await viewer.goto(`${server.baseUrl}/healthz`);
    await routeAnswersThrough(viewer, relay.address);
    await watchFromPage(viewer, "loss");
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const stats = await recoveryStats(viewer);
    await receiveStats(viewer);
    return { ...stats, dropped: relay.dropped };
  } finally {
    relay.close();
    await browser.close();
    await server.stop();
  }
}

const on = await run({});
const off = await run({ RETRANSMISSIONS: "off" });
console.log(
  `viewer path: ${LOSS * 100} % loss server->viewer, ${DELAY} ms each way, ${SECONDS} s, 720p publisher`,
);
for (
  const [label, o] of [["retransmissions on (default)", on], ["retransmissions off (baseline)", off]] as const
) {
  console.log(
    `${label.padEnd(32)} freezes ${o.freezeCount}, frozen ${o.totalFreezesDuration.toFixed(2)} s, ` +
      `NACKs sent ${o.nackCount}, RTX packets received ${o.retransmittedPacketsReceived}, packets lost after recovery ${o.packetsLost}, frames decoded ${o.framesDecoded}, ` +
      `datagrams dropped by relay ${o.dropped}`,
  );
}
