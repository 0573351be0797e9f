import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { StreamKeys } from "./stream_keys.ts";

Deno.test("a stream key opens its own room only; hashed keys work the same", () => {
  const hashed = createHash("sha256").update("bob-secret-key").digest("hex");
  const { keys, problems } = StreamKeys.parse(
    `# community server\nalice alice-secret-key\n\nbob sha256:${hashed}  # bob's key, hashed\n`,
  );
  assert.deepEqual(problems, []);
  assert.equal(keys.size, 2);
  assert.deepEqual(keys.match("alice-secret-key", "alice"), { kind: "room", room: "alice" });
  assert.deepEqual(keys.match("alice-secret-key", "bob"), { kind: "other-room" });
  assert.deepEqual(keys.match("bob-secret-key", "bob"), { kind: "room", room: "bob" });
  assert.deepEqual(keys.match("bob-secret-key", undefined), { kind: "room", room: "bob" });
  assert.deepEqual(keys.match("guess", "alice"), { kind: "unknown" });
  assert.deepEqual(keys.match(`sha256:${hashed}`, "bob"), { kind: "unknown" }, "the digest is not the key");
});

Deno.test("bad lines are skipped with a reason that never shows the key", () => {
  const { keys, problems } = StreamKeys.parse(
    "ok ok-key-0001\nshort tiny\nbad/room some-key-1\nthree fields here-too\nok again-key-01\ncopy ok-key-0001\n",
  );
  assert.equal(keys.size, 1);
  assert.equal(problems.length, 5);
  for (const p of problems) assert.doesNotMatch(p, /tiny|some-key|here-too|again-key|ok-key/);
  assert.match(problems[0], /line 2: key shorter/);
});
