/** Reading the server's `/metrics` in tests: every sample by `name{labels}`, and one that must be there. */
import assert from "node:assert/strict";

/** Scrapes `url` (a `/metrics` endpoint) into `name{labels}` -> value, checking status and every line. */
export async function scrapeMetrics(
  url: string,
  init?: RequestInit & { client?: Deno.HttpClient },
): Promise<Map<string, number>> {
  const res = await fetch(url, init);
  const text = await res.text();
  assert.equal(res.status, 200, `GET ${url}: ${text}`);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || /^# (HELP|TYPE) \S+ .+$/.test(line)) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(sample, `bad metrics line: ${line}`);
    values.set(sample[1], Number(sample[2]));
  }
  return values;
}

/** The value of `key` (`name` or `name{label="value"}`); fails when the server does not report it. */
export function metric(values: Map<string, number>, key: string): number {
  const value = values.get(key);
  assert.ok(value !== undefined, `metric ${key} present`);
  return value;
}

/** Scrapes `baseUrl`/metrics and returns the value of `key`, failing when it is missing. */
export async function metricOf(baseUrl: string, key: string): Promise<number> {
  return metric(await scrapeMetrics(`${baseUrl}/metrics`), key);
}
