import assert from "node:assert/strict";
import { recordingPeer } from "../../tests/helpers/recording_peer.ts";
import { RtpHeaderReader } from "../rtp/rtp_header.ts";
import { buildEmptyReceiverReport, compound } from "../rtp/rtcp.ts";
import { TwccRecorder } from "../rtp/twcc.ts";
import { newReception, newViewerTrack, Room, type Viewer } from "./room.ts";
import { ViewerBandwidth } from "./viewer_bandwidth.ts";

const video = {
  payloadType: 102,
  name: "H264",
  clockRate: 90000,
  fmtp: "packetization-mode=1",
  feedback: [],
};
const audio = { payloadType: 111, name: "opus", clockRate: 48000, channels: 2, fmtp: "", feedback: [] };

function rtp(pt: number, ssrc: number, seq: number, ts: number, payload: number[], padding = 0): Uint8Array {
  const p = new Uint8Array(12 + payload.length + padding);
  const view = new DataView(p.buffer);
  p[0] = padding > 0 ? 0xa0 : 0x80;
  p[1] = pt;
  view.setUint16(2, seq);
  view.setUint32(4, ts);
  view.setUint32(8, ssrc);
  p.set(payload, 12);
  if (padding > 0) p[p.length - 1] = padding;
  return p;
}

/** A room with one viewer that negotiated transport-cc (extension id 5) and RTX; raw packets are kept. */
function setup() {
  const publisher = recordingPeer();
  const room = new Room({ id: "r", publisherSessionId: "s", publisher, video, audio, now: new Date() });
  room.live = true;
  const peer = recordingPeer();
  const raw: Uint8Array[] = [];
  const record = peer.sendRtpPacket.bind(peer);
  peer.sendRtpPacket = (packet: Uint8Array, headerLength: number) => {
    raw.push(packet.slice());
    record(packet, headerLength);
  };
  const viewer: Viewer = {
    sessionId: "v",
    peer,
    video: newViewerTrack(96, 5000, true, 97),
    audio: newViewerTrack(111, 6000, false),
    reception: newReception(),
    sentReports: new Map(),
    bandwidth: new ViewerBandwidth(5),
  };
  room.addViewer(viewer, 0);
  return { room, viewer, raw };
}

Deno.test("viewer bandwidth: each video packet to the viewer carries its next transport-wide number; audio none", () => {
  const { room, viewer, raw } = setup();
  const first = viewer.bandwidth!.sent.nextSequence;
  room.handlePublisherRtp(rtp(102, 1, 10, 3000, [0x65, 1, 2, 3]), 1);
  room.handlePublisherRtp(rtp(111, 2, 70, 960, [9, 9]), 2);
  room.handlePublisherRtp(rtp(102, 1, 11, 6000, [0x41, 4, 5]), 3);
  const header = new RtpHeaderReader();
  const numbers: number[] = [];
  for (const packet of raw) {
    assert.ok(header.read(packet));
    const value = header.extensionValue(5);
    if (header.ssrc === 6000) assert.equal(value, -1, "audio is not numbered");
    else numbers.push(value);
  }
  assert.deepEqual(numbers, [first, (first + 1) & 0xffff]);
  assert.equal(viewer.bandwidth!.sent.sentAt(first), 1);
  // The payload after the extension is the publisher's.
  header.read(raw.at(-1)!);
  assert.deepEqual([...raw.at(-1)!.subarray(header.payloadStart)], [0x41, 4, 5]);
});

Deno.test("viewer bandwidth: the viewer's transport feedback reaches its estimator through the room", () => {
  const { room, viewer } = setup();
  const bandwidth = viewer.bandwidth!;
  const feedback = new TwccRecorder();
  let seq = 10;
  for (let t = 0; t < 1000; t += 10) {
    const sequence = bandwidth.sent.nextSequence;
    room.handlePublisherRtp(
      rtp(102, 1, seq++, t * 90, [seq === 11 ? 0x65 : 0x41, ...new Array(1000).fill(7)]),
      t,
    );
    feedback.record(sequence, (t + 20) * 1000);
    if (t % 100 === 90) {
      const packet = feedback.buildFeedback(0x1234, viewer.video!.ssrc)!;
      room.handleViewerRtcp(viewer, compound(buildEmptyReceiverReport(0x1234), packet), t + 30);
    }
  }
  assert.equal(bandwidth.feedbacks, 10);
  assert.equal(bandwidth.malformedFeedbacks, 0);
  // 100 packets of ~1 kB a second: ~800 kbit/s arrived.
  assert.ok(bandwidth.estimator.receivedBps > 700_000 && bandwidth.estimator.receivedBps < 900_000);
  assert.equal(bandwidth.estimator.decreases, 0);
});

Deno.test("a single-layer room does not forward padding-only packets, and the numbering closes over them", () => {
  const { room, viewer, raw } = setup();
  room.handlePublisherRtp(rtp(102, 1, 10, 3000, [0x65, 1]), 1);
  room.handlePublisherRtp(rtp(102, 1, 11, 3000, [], 200), 2); // the publisher's bandwidth probe
  room.handlePublisherRtp(rtp(102, 1, 12, 3000, [], 200), 3);
  room.handlePublisherRtp(rtp(102, 1, 13, 6000, [0x41, 2]), 4);
  const sent = (viewer.peer as ReturnType<typeof recordingPeer>).sent;
  assert.equal(raw.length, 2);
  assert.equal((sent[1].sequenceNumber - sent[0].sequenceNumber) & 0xffff, 1);
});
