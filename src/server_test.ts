import assert from "node:assert/strict";
import { loadConfig } from "./config.ts";
import { advertisedAddresses } from "./server.ts";

const config = (vars: Record<string, string>) => loadConfig((name) => vars[name]);

Deno.test("ICE candidates: PUBLIC_IP wins, then a specific bind address, else interfaces plus loopback", () => {
  assert.deepEqual(advertisedAddresses(config({ PUBLIC_IP: "203.0.113.7,198.51.100.2" })), [
    "203.0.113.7",
    "198.51.100.2",
  ]);
  assert.deepEqual(advertisedAddresses(config({ UDP_ADDRESS: "192.0.2.10" })), ["192.0.2.10"]);
  const all = advertisedAddresses(config({}));
  assert.equal(all[all.length - 1], "127.0.0.1", "loopback last, so local testing works");
  const interfaces = Deno.networkInterfaces().filter((n) =>
    n.family === "IPv4" && !n.address.startsWith("127.")
  );
  for (const nic of interfaces) assert.ok(all.includes(nic.address), `${nic.address} advertised`);
  assert.equal(new Set(all).size, all.length, "no duplicates");
});
