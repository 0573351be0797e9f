import assert from "node:assert/strict";
import { PaddingFilter } from "./padding_filter.ts";

Deno.test("padding filter: in-order padding is dropped and the numbering closes over it", () => {
  const f = new PaddingFilter();
  const out = [
    f.map(100, false),
    f.map(101, true),
    f.map(102, true),
    f.map(103, false),
    f.map(104, false),
    f.map(105, true),
    f.map(106, false),
  ];
  assert.deepEqual(out, [100, -1, -1, 101, 102, -1, 103]);
});

Deno.test("padding filter: late packets get the number their place had, across wrap-around", () => {
  const f = new PaddingFilter();
  assert.equal(f.map(65534, false), 65534);
  // 65535 lost for now; then padding at 0, media at 1.
  assert.equal(f.map(0, true), -1);
  assert.equal(f.map(1, false), 0);
  assert.equal(f.map(65535, false), 65535, "the retransmission fills the gap before the padding");
  assert.equal(f.map(2, false), 1);
  // A late padding packet keeps its place (it was not counted as dropped).
  const g = new PaddingFilter();
  g.map(10, false);
  g.map(12, false); // 11 late
  assert.equal(g.map(11, true), 11);
});

Deno.test("padding filter: a packet older than every remembered drop is dropped", () => {
  const f = new PaddingFilter();
  f.map(0, false);
  let seq = 2; // 1 comes late
  for (let i = 0; i < 200; i++) f.map(seq++, true);
  assert.equal(f.map(seq, false), (seq - 200) & 0xffff);
  assert.equal(f.map(1, false), -1);
});
