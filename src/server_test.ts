import assert from "node:assert/strict";
import { loadConfig } from "./config.ts";
import { advertisedAddresses } from "./server.ts";

const config = (vars: Record<string, string>) => loadConfig((name) => vars[name]);

function nic(name: string, family: "IPv4" | "IPv6", address: string): Deno.NetworkInterfaceInfo {
  return {
    name,
    family,
    address,
    netmask: "",
    scopeid: null,
    cidr: `${address}/24`,
    mac: "00:00:00:00:00:00",
  };
}

/** A host with loopback, two LAN addresses (one on two interfaces), an IPv6 address and a second loopback. */
const HOST = [
  nic("lo", "IPv4", "127.0.0.1"),
  nic("lo", "IPv6", "::1"),
  nic("eth0", "IPv4", "192.0.2.5"),
  nic("eth0", "IPv6", "2001:db8::5"),
  nic("eth1", "IPv4", "198.51.100.9"),
  nic("br0", "IPv4", "192.0.2.5"),
  nic("lo:1", "IPv4", "127.0.0.2"),
];

Deno.test("ICE candidates: PUBLIC_IP wins, then a specific bind address, else interfaces plus loopback", () => {
  const unread = () => {
    throw new Error("interfaces read although the address is configured");
  };
  assert.deepEqual(advertisedAddresses(config({ PUBLIC_IP: "203.0.113.7,198.51.100.2" }), unread), [
    "203.0.113.7",
    "198.51.100.2",
  ]);
  assert.deepEqual(advertisedAddresses(config({ UDP_ADDRESS: "192.0.2.10" }), unread), ["192.0.2.10"]);
  // Every non-loopback IPv4 address once, in interface order, then loopback last so local testing works.
  assert.deepEqual(advertisedAddresses(config({ UDP_ADDRESS: "0.0.0.0" }), () => HOST), [
    "192.0.2.5",
    "198.51.100.9",
    "127.0.0.1",
  ]);
  assert.deepEqual(
    advertisedAddresses(config({}), () => HOST.slice(0, 2)),
    ["127.0.0.1"],
    "loopback-only host",
  );
});
