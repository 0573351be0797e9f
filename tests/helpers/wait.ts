/** The one polling helper of the tests: wait until a condition on something read from the system holds. */

/**
 * Polls `read` every `intervalMs` (200 ms by default; in-process state may poll faster) until `ok` holds,
 * and returns the last value; throws with that value after `ms`. The deadline only guards against a hang:
 * make it generous, and assert on what was read, not on how long it took.
 */
export async function waitFor<T>(
  what: string,
  read: () => T | Promise<T>,
  ok: (value: T) => boolean,
  ms = 20_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last = await read();
  while (!ok(last)) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
    last = await read();
  }
  return last;
}
