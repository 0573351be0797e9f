/// <reference lib="dom" />
/**
 * WHIP publishing and WHEP watching inside a Chromium page, and reading the page's WebRTC stats. The
 * functions passed to `page.evaluate` run in the browser, so they only use web APIs.
 */
import type { Page } from "playwright-core";

/** Simulcast as Chromium's examples name the layers: h full size, m half, l quarter. */
export const THREE_LAYERS = [
  { rid: "h", scaleResolutionDownBy: 1 },
  { rid: "m", scaleResolutionDownBy: 2 },
  { rid: "l", scaleResolutionDownBy: 4 },
];

/** What {@link publishFromPage} publishes, and where. */
export interface PublishOptions {
  token: string;
  room: string;
  videoOnly?: boolean;
  width?: number;
  height?: number;
  /** RTCRtpSendParameters.degradationPreference, e.g. "maintain-resolution" for a detailed picture. */
  degradation?: string;
  codec?: string;
  /**
   * Simulcast: one encoding per layer, e.g. `[{ rid: "h" }, { rid: "l", scaleResolutionDownBy: 4 }]`; or one
   * encoding with an SVC `scalabilityMode` such as "L3T3_KEY".
   */
  sendEncodings?: { rid?: string; scaleResolutionDownBy?: number; scalabilityMode?: string }[];
}

/**
 * Publishes the fake camera + microphone over WHIP with H.264 preferred (or only `codec`, a mimeType such as
 * "video/VP8", set with setCodecPreferences); returns the session URL.
 */
export function publishFromPage(
  page: Page,
  options: PublishOptions,
): Promise<{ location: string; roomId: string }> {
  return page.evaluate(
    async ({ token, room, videoOnly, width, height, degradation, codec, sendEncodings }) => {
      const stream = await navigator.mediaDevices.getUserMedia({
        video: { width, height, frameRate: 30 },
        audio: !videoOnly,
      });
      const pc = new RTCPeerConnection();
      const video = pc.addTransceiver(stream.getVideoTracks()[0], {
        direction: "sendonly",
        streams: [stream],
        ...(sendEncodings.length > 0 ? { sendEncodings } : {}),
      });
      const codecs = RTCRtpSender.getCapabilities("video")!.codecs;
      video.setCodecPreferences(
        codec ? codecs.filter((c) => c.mimeType === codec || c.mimeType === "video/rtx") : [
          ...codecs.filter((c) => c.mimeType === "video/H264"),
          ...codecs.filter((c) => c.mimeType !== "video/H264"),
        ],
      );
      for (const track of stream.getAudioTracks()) {
        pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      }
      await pc.setLocalDescription(await pc.createOffer());
      const res = await fetch(`/whip?room=${encodeURIComponent(room)}`, {
        method: "POST",
        headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
        body: pc.localDescription!.sdp,
      });
      if (res.status !== 201) throw new Error(`WHIP POST answered ${res.status}: ${await res.text()}`);
      await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
      if (degradation) {
        const parameters = video.sender.getParameters();
        (parameters as unknown as { degradationPreference: string }).degradationPreference = degradation;
        await video.sender.setParameters(parameters);
      }
      (globalThis as unknown as { pc: RTCPeerConnection }).pc = pc;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`publisher stuck in ${pc.connectionState}`)), 15000);
        const check = () => {
          if (pc.connectionState === "connected") {
            clearTimeout(timer);
            resolve();
          } else if (pc.connectionState === "failed") {
            clearTimeout(timer);
            reject(new Error("publisher connection failed"));
          }
        };
        pc.onconnectionstatechange = check;
        check();
      });
      return { location: res.headers.get("Location")!, roomId: res.headers.get("X-Room-Id")! };
    },
    {
      width: 640,
      height: 480,
      degradation: "",
      codec: "",
      sendEncodings: [],
      ...options,
      videoOnly: options.videoOnly ?? false,
    },
  );
}

/** Watches a room over WHEP into a muted `<video>`; returns the session URL. */
export function watchFromPage(page: Page, room: string): Promise<string> {
  return page.evaluate(async (room) => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const video = document.createElement("video");
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    document.body.append(video);
    const stream = new MediaStream();
    pc.ontrack = (e) => {
      stream.addTrack(e.track);
      video.srcObject = stream;
    };
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(`/whep?target_id=${encodeURIComponent(room)}`, {
      method: "POST",
      headers: { "Content-Type": "application/sdp" },
      body: pc.localDescription!.sdp,
    });
    if (res.status !== 201) throw new Error(`WHEP POST answered ${res.status}: ${await res.text()}`);
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
    (globalThis as unknown as { pc: RTCPeerConnection }).pc = pc;
    // The WHEP extension links (layer selection, events), for tests that use them.
    (globalThis as unknown as { whepLinks: string }).whepLinks = res.headers.get("Link") ?? "";
    return res.headers.get("Location")!;
  }, room);
}

/** Receive-side figures read from `getStats()`. */
export interface ReceiveStats {
  connectionState: string;
  framesDecoded: number;
  frameWidth: number;
  frameHeight: number;
  videoPackets: number;
  audioPackets: number;
  videoCodec: string;
  videoWidthInElement: number;
}

/** Reads the page's receive stats. */
export function receiveStats(page: Page): Promise<ReceiveStats> {
  return page.evaluate(async () => {
    const pc = (globalThis as unknown as { pc: RTCPeerConnection }).pc;
    const report = await pc.getStats();
    const out = {
      connectionState: pc.connectionState,
      framesDecoded: 0,
      frameWidth: 0,
      frameHeight: 0,
      videoPackets: 0,
      audioPackets: 0,
      videoCodec: "",
      videoWidthInElement: document.querySelector("video")?.videoWidth ?? 0,
    };
    report.forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      if (s.kind === "video") {
        out.framesDecoded = s.framesDecoded ?? 0;
        out.frameWidth = s.frameWidth ?? 0;
        out.frameHeight = s.frameHeight ?? 0;
        out.videoPackets = s.packetsReceived ?? 0;
        const codec = s.codecId ? report.get(s.codecId) : undefined;
        out.videoCodec = codec?.mimeType ?? "";
      } else if (s.kind === "audio") {
        out.audioPackets = s.packetsReceived ?? 0;
      }
    });
    return out;
  });
}

/** Creates an SDP offer in the page without sending it (for error-path tests). */
export function offerFromPage(page: Page, kinds: ("audio" | "video")[], h264: boolean): Promise<string> {
  return page.evaluate(async ({ kinds, h264 }) => {
    const pc = new RTCPeerConnection();
    for (const kind of kinds) {
      const t = pc.addTransceiver(kind, { direction: "sendonly" });
      if (kind === "video" && !h264) {
        const codecs = RTCRtpSender.getCapabilities("video")!.codecs;
        t.setCodecPreferences(codecs.filter((c) => c.mimeType !== "video/H264"));
      }
    }
    const offer = await pc.createOffer();
    pc.close();
    return offer.sdp!;
  }, { kinds, h264 });
}

/**
 * Watches a room and measures the time from creating the offer to the first decoded video frame (polling
 * `framesDecoded` every 10 ms). Closes the connection and DELETEs the session afterwards.
 */
export function timeToFirstFrame(page: Page, room: string, timeoutMs = 10000): Promise<number> {
  return page.evaluate(async ({ room, timeoutMs }) => {
    const start = performance.now();
    const pc = new RTCPeerConnection();
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const video = document.createElement("video");
    video.muted = true;
    video.autoplay = true;
    document.body.append(video);
    const firstFrame = (async () => {
      while (performance.now() - start < timeoutMs) {
        let decoded = 0;
        (await pc.getStats()).forEach((r) => {
          if (r.type === "inbound-rtp" && r.kind === "video") decoded = r.framesDecoded ?? 0;
        });
        if (decoded > 0) return performance.now() - start;
        await new Promise((r) => setTimeout(r, 10));
      }
      const stats: Record<string, unknown> = {};
      (await pc.getStats()).forEach((r) => {
        if (r.type === "inbound-rtp" && r.kind === "video") Object.assign(stats, r);
      });
      throw new Error(`no frame within ${timeoutMs} ms: ${JSON.stringify(stats)}`);
    })();
    pc.ontrack = (e) => {
      if (e.track.kind === "video") video.srcObject = new MediaStream([e.track]);
    };
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(`/whep?target_id=${encodeURIComponent(room)}`, {
      method: "POST",
      headers: { "Content-Type": "application/sdp" },
      body: pc.localDescription!.sdp,
    });
    if (res.status !== 201) throw new Error(`WHEP POST answered ${res.status}`);
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
    try {
      return await firstFrame;
    } finally {
      pc.close();
      video.remove();
      await fetch(res.headers.get("Location")!, { method: "DELETE" });
    }
  }, { room, timeoutMs });
}

/**
 * Makes the page's next WHEP/WHIP answer point at `address` instead of the server's own candidates, so the
 * page's media goes through a relay (see lossy_relay.ts).
 */
export function routeAnswersThrough(page: Page, address: { hostname: string; port: number }): Promise<void> {
  return page.evaluate(({ hostname, port }) => {
    const original = RTCPeerConnection.prototype.setRemoteDescription;
    // deno-lint-ignore no-explicit-any
    (RTCPeerConnection.prototype as any).setRemoteDescription = function (
      description: RTCSessionDescriptionInit,
    ) {
      const sdp = description.sdp?.replace(
        /^(a=candidate:\S+ \d+ udp \d+ )\S+ \d+( typ host)/gm,
        `$1${hostname} ${port}$2`,
      );
      return Reflect.apply(original, this, [{ type: description.type, sdp }]);
    };
  }, address);
}

/** How a viewer's video reception coped with loss, from `getStats()`. */
export interface RecoveryStats {
  freezeCount: number;
  totalFreezesDuration: number;
  nackCount: number;
  framesDecoded: number;
  packetsLost: number;
  /** Packets that arrived on the RTX stream (0 when no RTX was negotiated). */
  retransmittedPacketsReceived: number;
}

/** Reads the page's video recovery figures. */
export function recoveryStats(page: Page): Promise<RecoveryStats> {
  return page.evaluate(async () => {
    const pc = (globalThis as unknown as { pc: RTCPeerConnection }).pc;
    const out = {
      freezeCount: 0,
      totalFreezesDuration: 0,
      nackCount: 0,
      framesDecoded: 0,
      packetsLost: 0,
      retransmittedPacketsReceived: 0,
    };
    (await pc.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "video") {
        out.freezeCount = r.freezeCount ?? 0;
        out.totalFreezesDuration = r.totalFreezesDuration ?? 0;
        out.nackCount = r.nackCount ?? 0;
        out.framesDecoded = r.framesDecoded ?? 0;
        out.packetsLost = r.packetsLost ?? 0;
        out.retransmittedPacketsReceived = r.retransmittedPacketsReceived ?? 0;
      }
    });
    return out;
  });
}
