import assert from "node:assert/strict";
import { SETTINGS } from "./config.ts";
import { README_BEGIN, README_END, settingsHelp, settingsMarkdown, withSettingsTable } from "./config_doc.ts";

/** A Markdown table row with its cells trimmed, so column padding (deno fmt's alignment) does not count. */
const normalise = (block: string) =>
  block.split("\n").map((line) =>
    line.startsWith("|")
      ? line.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/^-+$/, "-")).join("|")
      : line.trimEnd()
  );

Deno.test("--help lists every row of the settings table once, under its group, with its default", () => {
  const help = settingsHelp();
  for (const s of SETTINGS) {
    const lines = help.split("\n").filter((line) => line.trimStart().startsWith(`${s.name} `));
    assert.equal(lines.length, 1, s.name);
    assert.ok(lines[0].endsWith(`[default: ${s.defaultValue.replaceAll("`", "")}]`), lines[0]);
    assert.ok(!lines[0].includes("`"), "backticks are Markdown only");
  }
  assert.match(help, /Cluster:\n {2}REDIS_URL /);
});

Deno.test("the settings table has one row per variable and every row is documented", () => {
  const names = SETTINGS.map((s) => s.name);
  assert.equal(new Set(names).size, names.length, "a variable appears twice");
  assert.ok(names.length >= 49, `${names.length} rows`);
  for (const s of SETTINGS) {
    assert.match(s.name, /^[A-Z][A-Z0-9_]+$/);
    assert.ok(s.description.length >= 10 && !s.description.includes("\n"), s.name);
    assert.notEqual(s.defaultValue, "", `${s.name}: an empty default must say what unset means`);
  }
});

Deno.test("README's settings tables are the ones the table generates (regenerate: deno run -R -W src/config_doc.ts)", () => {
  const readme = Deno.readTextFileSync(new URL("../README.md", import.meta.url));
  const begin = readme.indexOf(README_BEGIN);
  const end = readme.indexOf(README_END);
  assert.ok(begin >= 0 && end > begin, "README.md lost its generated settings block");
  const documented = normalise(readme.slice(begin, end + README_END.length));
  const generated = normalise(settingsMarkdown());
  assert.deepEqual(
    documented,
    generated,
    "README.md's settings differ from src/config.ts: run `deno run -R=README.md -W=README.md src/config_doc.ts`",
  );
  for (const s of SETTINGS) assert.ok(readme.includes(`| \`${s.name}\``), `README misses ${s.name}`);
});

Deno.test("a README missing a setting, or with a stale default, fails the comparison", () => {
  const readme = `intro\n${settingsMarkdown()}\nrest`;
  const without = readme.split("\n").filter((line) => !line.startsWith("| `TCP_PORT`")).join("\n");
  assert.notDeepEqual(normalise(without), normalise(readme));
  const stale = readme.replace(/\| `UDP_PORT`( *)\| 8443/, "| `UDP_PORT`$1| 8444");
  assert.notEqual(stale, readme);
  assert.notDeepEqual(normalise(stale), normalise(readme));
  assert.equal(withSettingsTable(without), readme, "regenerating restores the row");
});
