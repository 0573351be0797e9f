/**
 * The Prometheus text exposition format, version 0.0.4: one `# HELP` and one `# TYPE` line per metric
 * family, then one `name{label="value"} number` line per sample.
 *
 * @example
 * ```ts
 * const text = renderExposition([
 *   { name: "sfu_rooms", help: "Live rooms.", type: "gauge", samples: [{ value: 2 }] },
 * ]);
 * // # HELP sfu_rooms Live rooms.
 * // # TYPE sfu_rooms gauge
 * // sfu_rooms 2
 * ```
 */

/** The `Content-Type` of a scrape response. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** One sample of a family: optional labels and a value. */
export interface Sample {
  labels?: Record<string, string>;
  value: number;
}

/** A metric family. Counter names end in `_total` by convention; {@link renderExposition} checks it. */
export interface MetricFamily {
  name: string;
  help: string;
  type: "counter" | "gauge";
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Renders families as exposition text; throws a `TypeError` for an invalid metric or label name. */
export function renderExposition(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    if (!NAME.test(family.name)) throw new TypeError(`invalid metric name "${family.name}"`);
    if (family.type === "counter" && !family.name.endsWith("_total")) {
      throw new TypeError(`counter "${family.name}" must end in _total`);
    }
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      lines.push(`${family.name}${renderLabels(sample.labels)} ${formatValue(sample.value)}`);
    }
  }
  return lines.join("\n") + "\n";
}

function renderLabels(labels: Record<string, string> | undefined): string {
  if (!labels) return "";
  const parts: string[] = [];
  for (const [name, value] of Object.entries(labels)) {
    if (!LABEL.test(name) || name.startsWith("__")) throw new TypeError(`invalid label name "${name}"`);
    parts.push(`${name}="${escapeLabelValue(value)}"`);
  }
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function escapeLabelValue(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
