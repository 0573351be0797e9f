/**
 * Whether a publisher answers keyframe requests (PLI) quickly. Browsers do, within a round trip and an
 * encode; OBS reportedly ignores PLI and sends keyframes on its own schedule. For a publisher that answers,
 * a joining viewer is better served by a fresh keyframe (~100 ms away) than by a replay of an old group of
 * pictures (seconds of fast-forward); for one that does not, the replay is the only quick start.
 * Pure: the caller passes `now` (milliseconds).
 */

/** A keyframe this soon after a request counts as its answer. */
export const PLI_ANSWER_MS = 300;
/** Answers in a row before the publisher is trusted to answer (a scheduled keyframe may follow by chance). */
const ANSWERS_NEEDED = 2;

/** Keyframe requests to one publisher and how its keyframes followed them. */
export class PliAnswers {
  /** When the latest keyframe started arriving. */
  keyframeAt = -Infinity;
  #askedAt = -1;
  #answered = 0;

  /** A keyframe request went to the publisher. */
  asked(now: number): void {
    if (this.#askedAt < 0) this.#askedAt = now;
  }

  /** A new keyframe started arriving. */
  keyframe(now: number): void {
    if (this.#askedAt >= 0) {
      this.#answered = now - this.#askedAt <= PLI_ANSWER_MS ? this.#answered + 1 : 0;
      this.#askedAt = -1;
    }
    this.keyframeAt = now;
  }

  /** True when the last requests were answered in time and none is overdue now. */
  answersQuickly(now: number): boolean {
    return this.#answered >= ANSWERS_NEEDED && !(this.#askedAt >= 0 && now - this.#askedAt > PLI_ANSWER_MS);
  }

  /** A new publisher: nothing known. */
  reset(): void {
    this.keyframeAt = -Infinity;
    this.#askedAt = -1;
    this.#answered = 0;
  }
}
