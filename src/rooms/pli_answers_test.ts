import assert from "node:assert/strict";
import { PLI_ANSWER_MS, PliAnswers } from "./pli_answers.ts";

Deno.test("PLI answers: trusted after two quick answers, not after a slow or overdue one", () => {
  const answers = new PliAnswers();
  assert.ok(!answers.answersQuickly(0));
  answers.asked(0);
  answers.keyframe(80);
  assert.ok(!answers.answersQuickly(100), "one answer may be a scheduled keyframe");
  answers.asked(1000);
  answers.asked(1100); // a second request while the first is open counts from the first
  answers.keyframe(1000 + PLI_ANSWER_MS);
  assert.ok(answers.answersQuickly(1400));
  assert.equal(answers.keyframeAt, 1300);
  answers.keyframe(3000); // a keyframe nobody asked for changes nothing
  assert.ok(answers.answersQuickly(3100));
  answers.asked(4000);
  assert.ok(answers.answersQuickly(4000 + PLI_ANSWER_MS), "still within the answer time");
  assert.ok(!answers.answersQuickly(4000 + PLI_ANSWER_MS + 1), "a request overdue");
  answers.keyframe(6000); // the publisher's own schedule, not an answer
  assert.ok(!answers.answersQuickly(6100));
  answers.reset();
  assert.equal(answers.keyframeAt, -Infinity);
});
