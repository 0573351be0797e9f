import assert from "node:assert/strict";
import { createLog, formatLogLine } from "./log.ts";

Deno.test("json log lines are one object each with time, level, msg and fields", () => {
  const lines: string[] = [];
  const log = createLog("info", "json", (line) => lines.push(line));
  log("debug", "not shown");
  log("info", "room lobby live", { room: "lobby", viewers: 0 });
  log("error", 'request failed: Error: "boom"\n    at handler (x.ts:1:1)', {
    msg: "shadowed",
    absent: undefined,
  });
  assert.equal(lines.length, 2);
  for (const line of lines) {
    assert.ok(line.endsWith("\n") && line.indexOf("\n") === line.length - 1, "exactly one line");
  }
  const first = JSON.parse(lines[0]);
  assert.deepEqual(Object.keys(first), ["time", "level", "msg", "room", "viewers"]);
  assert.equal(first.level, "info");
  assert.equal(first.msg, "room lobby live");
  assert.equal(first.room, "lobby");
  assert.ok(!Number.isNaN(Date.parse(first.time)));
  const second = JSON.parse(lines[1]);
  assert.match(second.msg, /^request failed: Error: "boom"\n/);
  assert.equal(second.field_msg, "shadowed");
  assert.ok(!("absent" in second));
});

Deno.test("text log lines keep the old shape and append fields as key=value", () => {
  const time = new Date("2026-01-02T03:04:05.678Z");
  assert.equal(
    formatLogLine(time, "warn", "hello", undefined, "text"),
    "2026-01-02T03:04:05.678Z WARN  hello",
  );
  assert.equal(
    formatLogLine(time, "info", "up", { port: 8080, where: "two words" }, "text"),
    '2026-01-02T03:04:05.678Z INFO  up port=8080 where="two words"',
  );
});
