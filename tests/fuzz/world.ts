/**
 * A server in one process for fuzzing and fault tests: a real `MediaSocket` on loopback, a real
 * `SessionManager` with a generated certificate, one publisher and some viewers connected through werift test
 * clients. Client datagrams are handed to `MediaSocket.handleDatagram` (or sent over UDP when `run` is set);
 * the server's replies travel over real loopback UDP to the clients' sockets.
 */
import { loadOrCreateCertificate, type ServerCertificate } from "../../src/peer/certificate.ts";
import { MediaSocket } from "../../src/net/udp.ts";
import { waitFor } from "../helpers/wait.ts";
import { SessionManager } from "../../src/rooms/sessions.ts";
import { RoomBus, roomBusName } from "../../src/rooms/bus.ts";
import type { Room } from "../../src/rooms/room.ts";
import {
  type ClientCertificate,
  createClientCertificate,
  loadOfferFixtures,
  TestClient,
} from "./werift_client.ts";

/** Options for {@link createWorld}. */
export interface WorldOptions {
  viewers?: number;
  /** Run the socket's read loop and send client datagrams over UDP instead of calling handleDatagram. */
  run?: boolean;
  roomId?: string;
}

/** The parts of the in-process server a test pokes at. */
export interface World {
  dir: string;
  busName: string;
  certificate: ServerCertificate;
  clientCertificate: ClientCertificate;
  socket: MediaSocket;
  sessions: SessionManager;
  room: Room;
  publisher: TestClient;
  publisherAnswer: string;
  viewers: TestClient[];
  viewerAnswers: string[];
  fixtures: { publish: string; watch: string };
  /** Log lines at warn and error. */
  problems: string[];
  /** The last few "closed" log lines, to say why a session ended. */
  closes: string[];
  /** Sends `data` to the server as if it came from `from`. */
  deliver(data: Uint8Array, from: { hostname: string; port: number }): void;
  /** Adds a connected viewer. */
  addViewer(): Promise<TestClient>;
  close(): Promise<void>;
}

/** Starts the in-process server and connects a publisher plus `viewers` viewers. */
export async function createWorld(options: WorldOptions = {}): Promise<World> {
  const dir = await Deno.makeTempDir({ prefix: "sfu-world-" });
  const certificate = await loadOrCreateCertificate(dir);
  const clientCertificate = await createClientCertificate();
  const fixtures = await loadOfferFixtures();
  // A sweep interval of an hour: consent timeouts would otherwise depend on how fast the machine fuzzes.
  const socket = new MediaSocket(
    Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }),
    options.run ? 1000 : 3_600_000,
  );
  const running = options.run ? socket.run().catch(() => {}) : Promise.resolve();
  const busName = roomBusName(crypto.randomUUID());
  const bus = new RoomBus(busName);
  const problems: string[] = [];
  const closes: string[] = [];
  const sessions = new SessionManager({
    certificate,
    candidates: [{ address: "127.0.0.1", port: socket.port }],
    consentTimeoutMs: 3_600_000,
    transport: socket,
    bus,
    log: (level, message) => {
      if (level === "warn" || level === "error") problems.push(`${level} ${message}`);
      if (message.includes("closed")) {
        closes.push(message);
        if (closes.length > 20) closes.shift();
      }
    },
  });
  socket.media = sessions.media;
  const serverAddress = { transport: "udp" as const, hostname: "127.0.0.1", port: socket.port };
  const deliver = (data: Uint8Array, from: { hostname: string; port: number }) =>
    socket.handleDatagram(data, from, performance.now());
  const toServer = (data: Uint8Array, client: TestClient) => {
    if (options.run) client.conn.send(data, serverAddress).catch(() => {});
    else deliver(data, client.address);
  };

  const publisher = new TestClient(clientCertificate, toServer);
  const roomId = options.roomId ?? "fuzz";
  const published = sessions.publish(publisher.offer(fixtures.publish), roomId);
  await publisher.connect(published.answer);
  const room = sessions.rooms.published(roomId)!;
  await waitFor("room live", () => room.live, Boolean, 5000, 5);

  const viewers: TestClient[] = [];
  const viewerAnswers: string[] = [];
  const addViewer = async () => {
    const viewer = new TestClient(clientCertificate, toServer);
    const watched = sessions.watch(roomId, viewer.offer(fixtures.watch));
    await viewer.connect(watched.answer);
    await waitFor(
      "viewer joined",
      () => [...room.viewers].some((v) => v.sessionId === watched.sessionId),
      Boolean,
      5000,
      5,
    );
    viewers.push(viewer);
    viewerAnswers.push(watched.answer);
    return viewer;
  };
  for (let i = 0; i < (options.viewers ?? 0); i++) await addViewer();

  return {
    dir,
    busName,
    certificate,
    clientCertificate,
    socket,
    sessions,
    room,
    publisher,
    publisherAnswer: published.answer,
    viewers,
    viewerAnswers,
    fixtures,
    problems,
    closes,
    deliver,
    addViewer,
    async close() {
      sessions.closeAll();
      await new Promise((r) => setTimeout(r, 20));
      socket.close();
      bus.close();
      await running;
      await publisher.close();
      for (const v of viewers) await v.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
