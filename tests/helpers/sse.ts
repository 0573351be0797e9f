/** A minimal Server-Sent-Events reader for tests: collects `data:` payloads as parsed JSON. */

/** A connected SSE stream. */
export interface SseReader {
  events: unknown[];
  comments: number;
  /** Resolves with the first event (already received or future) that satisfies `match`. */
  waitFor(match: (event: unknown) => boolean, ms?: number): Promise<unknown>;
  close(): void;
}

/** Opens `url` as an event stream and parses events in the background. */
export async function openSse(url: string): Promise<SseReader & { response: Response }> {
  const abort = new AbortController();
  const response = await fetch(url, { signal: abort.signal });
  const reader: SseReader & { response: Response } = {
    response,
    events: [],
    comments: 0,
    async waitFor(match, ms = 15000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const found = reader.events.find(match);
        if (found !== undefined) return found;
        if (Date.now() > deadline) {
          throw new Error(`no matching SSE event; got ${JSON.stringify(reader.events.slice(-3))}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () => abort.abort(),
  };
  (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of response.body!) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim());
          if (data.length > 0) reader.events.push(JSON.parse(data.join("\n")));
          else if (block.startsWith(":")) reader.comments++;
        }
      }
    } catch { /* aborted */ }
  })();
  return reader;
}
