/**
 * Transport-wide congestion control towards viewers in the SDP: a viewer offering the transport-cc header
 * extension and feedback gets both in the answer's video section (and none on audio, which is not
 * numbered); TRANSPORT_CC=off answers without them.
 */
import assert from "node:assert/strict";
import { loadOrCreateCertificate } from "../src/peer/certificate.ts";
import { SessionManager } from "../src/rooms/sessions.ts";
import { RoomBus, roomBusName } from "../src/rooms/bus.ts";
import type { Peer } from "../src/peer/peer.ts";
import { TWCC_URI } from "../src/rtp/twcc.ts";
import { loadOfferFixtures } from "./fuzz/werift_client.ts";

const transport = {
  transmit() {},
  addPeer(_peer: Peer) {},
  renamePeer(_peer: Peer, _old: string) {},
  removePeer() {},
  scheduler: { wakeAt() {}, cancel() {} },
};

async function answerTo(transportCc: boolean | undefined): Promise<string[]> {
  const { publish, watch } = await loadOfferFixtures();
  const dir = await Deno.makeTempDir();
  const bus = new RoomBus(roomBusName(crypto.randomUUID()));
  const sessions = new SessionManager({
    certificate: await loadOrCreateCertificate(dir),
    candidates: [{ address: "127.0.0.1", port: 9 }],
    consentTimeoutMs: 10_000,
    transport,
    bus,
    log: () => {},
    ...(transportCc === undefined ? {} : { transportCc }),
  });
  try {
    sessions.publish(publish, "room");
    sessions.rooms.get("room")!.live = true;
    const answer = sessions.watch("room", watch).answer;
    // One string per m-section.
    return answer.split(/\r\n(?=m=)/).slice(1);
  } finally {
    sessions.closeAll();
    bus.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a viewer offering transport-cc gets the extension and feedback on its video line", async () => {
  const sections = await answerTo(undefined);
  const video = sections.find((s) => s.startsWith("m=video"))!;
  const audio = sections.find((s) => s.startsWith("m=audio"))!;
  assert.match(video, new RegExp(`a=extmap:4 ${TWCC_URI.replaceAll(".", "\\.")}\r\n`));
  assert.match(video, /a=rtcp-fb:\d+ transport-cc\r\n/);
  assert.doesNotMatch(audio, /transport-cc|extmap/);
});

Deno.test("TRANSPORT_CC=off: the viewer's answer has no transport-cc", async () => {
  for (const section of await answerTo(false)) assert.doesNotMatch(section, /transport-cc|extmap/);
});
