import assert from "node:assert/strict";
import { ThumbnailTap } from "./thumbnail_tap.ts";

Deno.test("thumbnail tap: keyframes posted at most once a second; a due thumbnail asks once per interval", () => {
  const tap = new ThumbnailTap(5000);
  assert.equal(tap.keyframeWanted(0), true, "nothing yet: ask for the first keyframe");
  assert.equal(tap.keyframeWanted(100), false, "asked within the interval");
  assert.equal(tap.keyframe(200), true, "the first keyframe is taken");
  assert.equal(tap.keyframe(700), false, "not twice within a second");
  assert.equal(tap.keyframe(1300), true, "posted again (the thumbnailer takes one per interval)");
  assert.equal(tap.keyframeWanted(5100), false, "the next thumbnail is due at 5200");
  assert.equal(tap.keyframeWanted(5200), true, "due, and no keyframe came: ask");
  assert.equal(tap.keyframeWanted(6000), false);
  assert.equal(tap.keyframe(5300), true, "the answer is taken: next due at 10300");
  assert.equal(tap.keyframeWanted(10_200), false);
  assert.equal(tap.keyframeWanted(10_300), true);
});

Deno.test("thumbnail tap without an interval posts keyframes but never asks for one", () => {
  const tap = new ThumbnailTap(undefined);
  assert.equal(tap.keyframe(0), true);
  assert.equal(tap.keyframeWanted(60_000), false);
});
