/**
 * The benchmark's baseline: the smallest SFU one can build from werift's `RTCPeerConnection`: one
 * connection for the publisher and one per viewer, forwarding with `MediaStreamTrack.writeRtp`. It speaks
 * just enough WHIP/WHEP for the light client (POST offer → 201 answer, DELETE).
 *
 * Run: `deno run --allow-all tests/bench/werift_sfu.ts`; prints `LISTENING <port>` when ready.
 */
import { MediaStreamTrack, RTCPeerConnection, type RTCRtpTransceiver, useH264, useOPUS } from "werift";

const config = {
  codecs: { video: [useH264({ payloadType: 102 })], audio: [useOPUS({ payloadType: 111 })] },
  iceServers: [],
  iceUseIpv6: false,
  iceAdditionalHostAddresses: ["127.0.0.1"],
};

interface Room {
  publisher: RTCPeerConnection;
  video: MediaStreamTrack;
  audio: MediaStreamTrack;
}

const rooms = new Map<string, Room>();
const sessions = new Map<string, RTCPeerConnection>();

async function answer(pc: RTCPeerConnection, offer: string): Promise<string> {
  await pc.setRemoteDescription({ type: "offer", sdp: offer });
  await pc.setLocalDescription(await pc.createAnswer());
  // The answer goes out complete (no trickle), like the ICE-lite server's.
  if (pc.iceGatheringState !== "complete") {
    await new Promise<void>((resolve) => {
      const sub = pc.iceGatheringStateChange.subscribe((state) => {
        if (state === "complete") {
          sub.unSubscribe();
          resolve();
        }
      });
    });
  }
  return pc.localDescription!.sdp;
}

function created(sdp: string, kind: string, id: string): Response {
  return new Response(sdp, {
    status: 201,
    headers: { "Content-Type": "application/sdp", Location: `/${kind}/${id}` },
  });
}

async function handle(req: Request): Promise<Response> {
  const url = new URL(req.url);
  const [, kind, id] = url.pathname.split("/");
  if (req.method === "DELETE" && id) {
    const pc = sessions.get(id);
    sessions.delete(id);
    for (const [name, room] of rooms) if (room.publisher === pc) rooms.delete(name);
    await pc?.close();
    return new Response(null, { status: pc ? 200 : 404 });
  }
  if (req.method !== "POST") return new Response("not found\n", { status: 404 });
  const offer = await req.text();
  const sessionId = crypto.randomUUID();
  if (kind === "whip") {
    const name = url.searchParams.get("room") ?? sessionId;
    const pc = new RTCPeerConnection(config);
    const room: Room = {
      publisher: pc,
      video: new MediaStreamTrack({ kind: "video" }),
      audio: new MediaStreamTrack({ kind: "audio" }),
    };
    pc.onTrack.subscribe((track) => {
      const out = track.kind === "video" ? room.video : room.audio;
      track.onReceiveRtp.subscribe((rtp) => out.writeRtp(rtp));
    });
    rooms.set(name, room);
    sessions.set(sessionId, pc);
    return created(await answer(pc, offer), "whip", sessionId);
  }
  if (kind === "whep") {
    const room = rooms.get(url.searchParams.get("target_id") ?? "");
    if (!room) return new Response("room not live\n", { status: 404 });
    const pc = new RTCPeerConnection(config);
    const transceivers: RTCRtpTransceiver[] = [
      pc.addTransceiver(room.video, { direction: "sendonly" }),
      pc.addTransceiver(room.audio, { direction: "sendonly" }),
    ];
    sessions.set(sessionId, pc);
    const sdp = await answer(pc, offer);
    void transceivers;
    return created(sdp, "whep", sessionId);
  }
  return new Response("not found\n", { status: 404 });
}

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`LISTENING ${port}`),
}, (req) => handle(req).catch((e) => new Response(`${e}\n`, { status: 500 })));

Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
