/** How many HTTP connections the process can afford, from its open-file limit and the settings. Pure. */
import type { Config } from "../config.ts";

/** The caps in force and why. */
export interface ConnectionBudget {
  maxConnections: number;
  maxPerAddress: number;
  /** Where the total comes from, for the start-up log. */
  basis: string;
  /** MAX_HTTP_CONNECTIONS was above what the descriptors allow and was lowered. */
  lowered: boolean;
}

/** Descriptors kept for everything that is not an HTTP connection (UDP, files, ffmpeg pipes, Redis). */
const RESERVED_DESCRIPTORS = 128;
/** What the open-file limit is assumed to be when it cannot be read (no --allow-ffi): a common default. */
const ASSUMED_OPEN_FILE_LIMIT = 1024;

/**
 * The HTTP connection caps: MAX_HTTP_CONNECTIONS, or as many as the open-file limit allows with a reserve
 * (a relayed connection holds up to three descriptors: the client's, and both ends of the loopback hop);
 * one address never gets more than half of them.
 */
export function httpConnectionLimits(
  config: Pick<Config, "maxHttpConnections" | "maxHttpConnectionsPerAddress">,
  fileLimit: number | undefined,
): ConnectionBudget {
  const known = fileLimit !== undefined;
  const limit = fileLimit ?? ASSUMED_OPEN_FILE_LIMIT;
  const affordable = Math.max(8, Math.floor((limit - RESERVED_DESCRIPTORS) / 3));
  let maxConnections = affordable;
  let lowered = false;
  let basis = known
    ? `open-file limit ${fileLimit}`
    : `open-file limit unknown without --allow-ffi, assumed ${ASSUMED_OPEN_FILE_LIMIT}`;
  if (config.maxHttpConnections > 0) {
    // Above what the descriptors allow, Deno.serve's own accept would fail and end the process: a known
    // limit wins over the setting.
    if (known && config.maxHttpConnections > affordable) {
      basis =
        `MAX_HTTP_CONNECTIONS=${config.maxHttpConnections} lowered to fit the open-file limit ${fileLimit}`;
      lowered = true;
    } else {
      maxConnections = config.maxHttpConnections;
      basis = "MAX_HTTP_CONNECTIONS";
    }
  }
  const maxPerAddress = Math.max(
    1,
    Math.min(config.maxHttpConnectionsPerAddress, Math.floor(maxConnections / 2)),
  );
  return { maxConnections, maxPerAddress, basis, lowered };
}
