import assert from "node:assert/strict";
import { GopIndex } from "../rtp/gop_index.ts";
import { PacketCache } from "../rtp/packet_cache.ts";
import { type RecordingPeer, recordingPeer } from "../../tests/helpers/recording_peer.ts";
import { rtpPacket } from "../../tests/helpers/srtp_packets.ts";
import { Forwarder } from "./forwarder.ts";
import { REPLAY_BURST_BYTES } from "./join_replay.ts";
import { ReplayingViewers } from "./replaying_viewers.ts";
import { newReception, newViewerTrack, type Viewer } from "./viewer.ts";

/** A 300-packet GOP of 1,000-byte payloads in the history, ten packets per frame. */
function setup() {
  const history = new PacketCache(1024);
  const gop = new GopIndex();
  for (let seq = 500; seq < 800; seq++) {
    const timestamp = 3000 * Math.floor(seq / 10);
    history.store(seq, rtpPacket({ seq, timestamp, payloadLength: 1000 }));
    gop.push(seq, timestamp, seq === 500);
  }
  const keyframeRequests: number[] = [];
  const replays = new ReplayingViewers({
    history,
    gop,
    forwarder: new Forwarder(),
    requestKeyframe: (now) => keyframeRequests.push(now),
  });
  const viewer: Viewer & { peer: RecordingPeer } = {
    sessionId: "v",
    peer: recordingPeer(),
    video: newViewerTrack(96, 5000, true),
    reception: newReception(),
    sentReports: new Map(),
  };
  return { history, replays, viewer, keyframeRequests };
}

Deno.test("a replay sends the GOP in order, a first burst then paced, and hands over to live at the edge", () => {
  const { replays, viewer } = setup();
  const members = new Set<Viewer>([viewer]);
  replays.start(viewer, viewer.video!, 500, 125, 0); // a 1 Mbit/s stream: replayed at 3 Mbit/s
  const wake = replays.poll(members, 0);
  const burst = viewer.peer.sent.length;
  assert.ok(burst > 0 && burst * 1012 <= REPLAY_BURST_BYTES + 1012, `first burst ${burst} packets`);
  assert.ok(wake !== undefined && wake >= 4, "wants to be woken later, not sooner than 4 ms");
  let now = 0;
  while (replays.size > 0 && now < 5000) replays.poll(members, now += 10);
  assert.equal(replays.size, 0, "caught up");
  assert.equal(viewer.video!.replay!.active, false);
  const numbers = viewer.peer.sent.map((s) => (s.sequenceNumber - viewer.video!.sequenceOffset) & 0xffff);
  assert.deepEqual(numbers, Array.from({ length: 300 }, (_, i) => 500 + i), "every packet once, in order");
  assert.ok(now > 600 && now < 1200, `300 KB at 375 B/ms after a 64 KB burst: done at ${now} ms`);
});

Deno.test("a viewer that left is dropped; a lost replay makes its viewer wait for a keyframe", () => {
  const { replays, viewer, keyframeRequests } = setup();
  replays.start(viewer, viewer.video!, 500, 125, 0);
  assert.equal(replays.poll(new Set(), 0), undefined, "not a member of the room any more");
  assert.equal(replays.size, 0);
  assert.equal(viewer.peer.sent.length, 0);
  replays.start(viewer, viewer.video!, 500, 125, 0);
  replays.poll(new Set([viewer]), 0);
  replays.loseAll(50);
  const track = viewer.video!;
  assert.deepEqual(
    [track.started, track.remap, track.replay!.active, replays.size],
    [false, true, false, 0],
    "waits for the next keyframe, numbered on from what was sent",
  );
  assert.deepEqual(keyframeRequests, [50]);
});
