import assert from "node:assert/strict";
import { type ClusterFigures, collectMetrics, metricsHandler, type MetricsSources } from "./metrics.ts";
import { renderExposition } from "../metrics/exposition.ts";
import { MediaTotals } from "../metrics/media_totals.ts";
import { LoopLagSampler } from "../metrics/loop_lag.ts";
import type { Room, RoomCounters } from "../rooms/room.ts";
import type { Peer, PeerCounters, PeerState } from "../peer/peer.ts";
import type { PeerTransport } from "../rooms/sessions.ts";

/** A parsed sample line. */
interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses exposition text back strictly: every line is `# HELP name text`, `# TYPE name counter|gauge` or
 * `name{label="value",...} number`, every sample follows the TYPE of its family, and HELP/TYPE come once.
 */
function parseExposition(text: string): { types: Map<string, string>; samples: ParsedSample[] } {
  assert.ok(text.endsWith("\n"), "ends with a newline");
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: ParsedSample[] = [];
  let family = "";
  for (const line of text.slice(0, -1).split("\n")) {
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (comment) {
      const [, kind, name, rest] = comment;
      if (kind === "HELP") {
        assert.ok(!helps.has(name), `one HELP for ${name}`);
        assert.ok(rest.length > 0 && !rest.includes("\n"));
        helps.add(name);
      } else {
        assert.ok(!types.has(name), `one TYPE for ${name}`);
        assert.match(rest, /^(counter|gauge)$/);
        types.set(name, rest);
        family = name;
      }
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(sample, `not a comment or a sample: ${JSON.stringify(line)}`);
    const [, name, , labelText, valueText] = sample;
    assert.equal(name, family, `${name} follows its own TYPE line`);
    const labels: Record<string, string> = {};
    if (labelText !== undefined) {
      const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
      let match;
      while ((match = label.exec(labelText)) !== null) {
        labels[match[1]] = match[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
        if (match[3] === "") break;
      }
      assert.equal(label.lastIndex, labelText.length, `labels parse completely: ${labelText}`);
    }
    const value = valueText === "+Inf" ? Infinity : valueText === "-Inf" ? -Infinity : Number(valueText);
    assert.ok(valueText === "NaN" || !Number.isNaN(value), `numeric value: ${valueText}`);
    samples.push({ name, labels, value });
  }
  for (const [name, type] of types) {
    assert.ok(helps.has(name), `HELP for ${name}`);
    if (type === "counter") assert.match(name, /_total$/);
  }
  return { types, samples };
}

function value(samples: ParsedSample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.find((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  assert.ok(found, `sample ${name} ${JSON.stringify(labels)}`);
  return found.value;
}

function fakeRoom(counters: Partial<RoomCounters>, live = true): Room {
  return {
    live,
    counters: {
      keyframeRequests: 0,
      keyframeCacheHits: 0,
      nacksSent: 0,
      nacksReceived: 0,
      packetsResent: 0,
      sourceChanges: 0,
      layerSwitchesUp: 0,
      layerSwitchesDown: 0,
      ...counters,
    },
  } as unknown as Room;
}

function fakePeer(state: PeerState, counters: Partial<PeerCounters> = {}): Peer {
  return {
    state,
    counters: { decryptFailures: 0, rtpIn: 0, rtpOut: 0, rtcpIn: 0, ...counters },
  } as unknown as Peer;
}

const nullTransport: PeerTransport = {
  scheduler: { wakeAt() {}, cancel() {} },
  transmit() {},
  addPeer() {},
  renamePeer() {},
  removePeer() {},
};

function sources(rooms: Map<string, Room>, media: MediaTotals): MetricsSources {
  return {
    socket: {
      counters: {
        datagramsIn: 120,
        datagramsOut: 340,
        bytesIn: 123_456,
        bytesOut: 654_321,
        junk: 2,
        unknownPeer: 3,
        sendErrors: 1,
        internalErrors: 4,
        batches: 6,
        offLoopback: 7,
        oversize: 8,
        receiveBatches: 9,
      },
    },
    media,
    sessions: { counts: { publishers: 1, viewers: 2 }, rooms: { publishedRooms: () => rooms.values() } },
    feed: { clientCount: 4 },
    thumbnails: { counters: { runs: 5, failures: 1 } },
    loopLag: { last: 1.5, max: 12.25 },
    cryptoBackend: () => "native (OpenSSL 3.5.1, libcrypto.so.3)",
    startedAt: 1_700_000_000_000,
  };
}

Deno.test("metrics text parses back line by line and carries every figure", () => {
  const rooms = new Map([["a", fakeRoom({ keyframeRequests: 3, nacksReceived: 7, keyframeCacheHits: 1 })]]);
  const media = new MediaTotals(() => rooms.values());
  const transport = media.wrap(nullTransport);
  transport.addPeer(fakePeer("connected", { decryptFailures: 2, rtpIn: 50 }));
  transport.addPeer(fakePeer("checking"));
  transport.addPeer(fakePeer("new"));
  const { types, samples } = parseExposition(renderExposition(collectMetrics(sources(rooms, media))));

  assert.equal(types.get("sfu_udp_datagrams_in_total"), "counter");
  assert.equal(types.get("sfu_viewers"), "gauge");
  assert.equal(value(samples, "sfu_rooms"), 1);
  assert.equal(value(samples, "sfu_publishers"), 1);
  assert.equal(value(samples, "sfu_viewers"), 2);
  assert.equal(value(samples, "sfu_sessions", { state: "connected" }), 1);
  assert.equal(value(samples, "sfu_sessions", { state: "checking" }), 1);
  assert.equal(value(samples, "sfu_sessions", { state: "new" }), 1);
  assert.equal(value(samples, "sfu_udp_datagrams_in_total"), 120);
  assert.equal(value(samples, "sfu_udp_bytes_out_total"), 654_321);
  assert.equal(value(samples, "sfu_udp_junk_datagrams_total"), 2);
  assert.equal(value(samples, "sfu_udp_unknown_peer_datagrams_total"), 3);
  assert.equal(value(samples, "sfu_udp_off_loopback_stun_total"), 7);
  assert.equal(value(samples, "sfu_udp_oversize_datagrams_total"), 8);
  assert.equal(value(samples, "sfu_udp_receive_batches_total"), 9);
  assert.equal(value(samples, "sfu_udp_send_errors_total"), 1);
  assert.equal(value(samples, "sfu_internal_errors_total"), 4);
  assert.equal(value(samples, "sfu_udp_send_batches_total"), 6);
  assert.equal(value(samples, "sfu_srtp_decrypt_failures_total"), 2);
  assert.equal(value(samples, "sfu_rtp_packets_in_total"), 50);
  assert.equal(value(samples, "sfu_keyframe_requests_total"), 3);
  assert.equal(value(samples, "sfu_nacks_received_total"), 7);
  assert.equal(value(samples, "sfu_keyframe_cache_hits_total"), 1);
  assert.equal(value(samples, "sfu_thumbnail_runs_total"), 5);
  assert.equal(value(samples, "sfu_thumbnail_failures_total"), 1);
  assert.equal(value(samples, "sfu_sse_clients"), 4);
  assert.equal(value(samples, "sfu_event_loop_lag_seconds"), 0.0015);
  assert.equal(value(samples, "sfu_event_loop_lag_max_seconds"), 0.01225);
  assert.equal(
    value(samples, "sfu_crypto_backend_info", { backend: "native (OpenSSL 3.5.1, libcrypto.so.3)" }),
    1,
  );
  assert.equal(value(samples, "process_start_time_seconds"), 1_700_000_000);
});

Deno.test("cluster families appear only in cluster mode, with every figure", () => {
  const rooms = new Map<string, Room>();
  const media = new MediaTotals(() => rooms.values());
  const single = parseExposition(renderExposition(collectMetrics(sources(rooms, media))));
  assert.deepEqual([...single.types.keys()].filter((name) => name.startsWith("sfu_cluster_")), []);

  const figures: ClusterFigures = {
    redisConnected: true,
    redisReconnects: 2,
    nodes: 3,
    rooms: 4,
    relays: 1,
    relayPulls: 5,
    relayFailures: 1,
    relayInternalErrors: 2,
  };
  const clustered = { ...sources(rooms, media), cluster: { metrics: () => figures } };
  let { types, samples } = parseExposition(renderExposition(collectMetrics(clustered)));
  assert.equal(types.get("sfu_cluster_redis_connected"), "gauge");
  assert.equal(types.get("sfu_cluster_relay_pulls_total"), "counter");
  assert.equal(value(samples, "sfu_cluster_redis_connected"), 1);
  assert.equal(value(samples, "sfu_cluster_redis_reconnects_total"), 2);
  assert.equal(value(samples, "sfu_cluster_nodes"), 3);
  assert.equal(value(samples, "sfu_cluster_rooms"), 4);
  assert.equal(value(samples, "sfu_cluster_relays"), 1);
  assert.equal(value(samples, "sfu_cluster_relay_pulls_total"), 5);
  assert.equal(value(samples, "sfu_cluster_relay_failures_total"), 1);
  assert.equal(
    value(samples, "sfu_internal_errors_total"),
    value(single.samples, "sfu_internal_errors_total") + 2,
    "the relays' internal errors count too",
  );
  assert.equal(value(samples, "sfu_rooms"), 0, "the single-node families are still there");

  // Read at every scrape: Redis going away shows at the next one.
  figures.redisConnected = false;
  ({ samples } = parseExposition(renderExposition(collectMetrics(clustered))));
  assert.equal(value(samples, "sfu_cluster_redis_connected"), 0);
});

Deno.test("fan-out workers: one sample per worker and figure, only when workers run", () => {
  const rooms = new Map<string, Room>();
  const media = new MediaTotals(() => rooms.values());
  const none = parseExposition(renderExposition(collectMetrics(sources(rooms, media))));
  assert.deepEqual([...none.types.keys()].filter((name) => name.startsWith("sfu_fanout_")), []);
  const workers = [0, 1].map((worker) => ({
    worker,
    running: worker === 0,
    viewers: 10 + worker,
    sealed: 100 + worker,
    sent: 90 + worker,
    sendErrors: 10,
    ringDrops: 3 + worker,
    orphaned: 2,
    restarts: worker,
  }));
  const { types, samples } = parseExposition(
    renderExposition(collectMetrics({ ...sources(rooms, media), fanout: { figures: () => workers } })),
  );
  assert.equal(types.get("sfu_fanout_packets_sealed_total"), "counter");
  assert.equal(types.get("sfu_fanout_viewers"), "gauge");
  for (const w of workers) {
    const labels = { worker: String(w.worker) };
    assert.equal(value(samples, "sfu_fanout_worker_running", labels), w.running ? 1 : 0);
    assert.equal(value(samples, "sfu_fanout_viewers", labels), w.viewers);
    assert.equal(value(samples, "sfu_fanout_packets_sealed_total", labels), w.sealed);
    assert.equal(value(samples, "sfu_fanout_packets_sent_total", labels), w.sent);
    assert.equal(value(samples, "sfu_fanout_send_errors_total", labels), w.sendErrors);
    assert.equal(value(samples, "sfu_fanout_ring_drops_total", labels), w.ringDrops);
    assert.equal(value(samples, "sfu_fanout_orphaned_total", labels), w.orphaned);
    assert.equal(value(samples, "sfu_fanout_worker_restarts_total", labels), w.restarts);
  }
  assert.equal(value(samples, "sfu_rtp_packets_offloaded_total"), 0);
});

Deno.test("label values and help text are escaped; bad names are refused", () => {
  const text = renderExposition([
    {
      name: "x_info",
      help: "back\\slash and\nnewline",
      type: "gauge",
      samples: [{ labels: { v: 'a "quoted" \\ value\nover two lines' }, value: 1 }, { value: NaN }],
    },
    { name: "y_total", help: "h", type: "counter", samples: [{ value: Infinity }] },
  ]);
  assert.match(text, /^# HELP x_info back\\\\slash and\\nnewline$/m);
  const { samples } = parseExposition(text);
  assert.equal(samples[0].labels.v, 'a "quoted" \\ value\nover two lines');
  assert.ok(Number.isNaN(samples[1].value));
  assert.equal(samples[2].value, Infinity);
  assert.throws(
    () => renderExposition([{ name: "bad-name", help: "h", type: "gauge", samples: [] }]),
    TypeError,
  );
  assert.throws(
    () => renderExposition([{ name: "no_suffix", help: "h", type: "counter", samples: [] }]),
    TypeError,
  );
  assert.throws(
    () =>
      renderExposition([{
        name: "g",
        help: "h",
        type: "gauge",
        samples: [{ labels: { "a-b": "" }, value: 1 }],
      }]),
    TypeError,
  );
});

Deno.test("room and peer counters survive their room closing", () => {
  const rooms = new Map<string, Room>();
  const media = new MediaTotals(() => rooms.values());
  const transport = media.wrap(nullTransport);
  const publisher = fakePeer("connected", { decryptFailures: 1 });
  transport.addPeer(publisher);
  const room = fakeRoom({ keyframeRequests: 2, packetsResent: 9 });
  rooms.set("r", room);
  // The room opens and closes between two scrapes: the session layer removes the publisher from the
  // transport first, then drops the room.
  room.counters.keyframeRequests = 4;
  (publisher as { state: PeerState }).state = "closed";
  transport.removePeer(publisher);
  rooms.delete("r");
  let snapshot = media.snapshot();
  assert.equal(snapshot.rooms.keyframeRequests, 4);
  assert.equal(snapshot.rooms.packetsResent, 9);
  assert.equal(snapshot.peers.decryptFailures, 1);
  assert.deepEqual(snapshot.sessionsByState, { new: 0, checking: 0, connected: 0 });

  // A new room under the same name adds to the totals instead of replacing them.
  const again = fakeRoom({ keyframeRequests: 1 });
  rooms.set("r", again);
  snapshot = media.snapshot();
  assert.equal(snapshot.rooms.keyframeRequests, 5);
  rooms.delete("r");
  snapshot = media.snapshot();
  assert.equal(snapshot.rooms.keyframeRequests, 5, "a room seen at a scrape is folded once");
  assert.equal(media.snapshot().rooms.keyframeRequests, 5);
});

Deno.test("GET /metrics answers with the exposition content type; other paths are not its business", async () => {
  const rooms = new Map<string, Room>();
  const handler = metricsHandler(sources(rooms, new MediaTotals(() => rooms.values())));
  const url = new URL("http://x/metrics");
  const response = handler(new Request(url), url)!;
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  parseExposition(await response.text());
  const post = handler(new Request(url, { method: "POST" }), url)!;
  assert.equal(post.status, 405);
  await post.body?.cancel();
  const other = new URL("http://x/rooms");
  assert.equal(handler(new Request(other), other), undefined);
});

Deno.test("event-loop lag is how late the timer ran, with the recent maximum", () => {
  const lag = new LoopLagSampler(500);
  lag.record(0);
  lag.record(500);
  assert.equal(lag.last, 0);
  lag.record(1030); // 30 ms late
  lag.record(1530);
  assert.equal(lag.last, 0);
  assert.equal(lag.max, 30);
  for (let t = 2030; t < 2030 + 25 * 500; t += 500) lag.record(t);
  assert.equal(lag.max, 0, "old samples leave the window");
});

Deno.test("rooms relayed from another node count in the totals (resends and keyframe requests for its viewers)", () => {
  // What the server passes: every room of the session layer's one room table, published or relayed.
  const rooms = [fakeRoom({ packetsResent: 2 }), fakeRoom({ packetsResent: 5, keyframeRequests: 3 })];
  const snapshot = new MediaTotals(() => rooms).snapshot();
  assert.equal(snapshot.rooms.packetsResent, 7);
  assert.equal(snapshot.rooms.keyframeRequests, 3);
});
