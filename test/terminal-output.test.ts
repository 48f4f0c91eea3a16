/**
 * Strings from files reach the terminal as text, never as control sequences: a crafted case
 * name in a run compared, or a path in an error, is printed with its control characters as
 * `\u00XX` (a run that retitled the terminal and printed a fake "nothing regressed" line, before).
 * JSON output keeps its meaning: the same characters, escaped.
 */
import { expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { withoutControls } from "../cli/main";
import { runCliIn, scratchDir } from "./helpers";

const dir = scratchDir("terminal-output");
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

test("control characters become visible text; line breaks and tabs stay; JSON parses to the same string", () => {
  expect(withoutControls("a\x1b]0;x\x07\rb\n\tc\x9b")).toBe("a\\u001b]0;x\\u0007\\u000db\n\tc\\u009b");
  const doc = JSON.stringify({ name: "x\x7fy\x85z" });
  expect(JSON.parse(withoutControls(doc))).toEqual({ name: "x\x7fy\x85z" });
});

test("compare of a crafted run, and an error naming a crafted path: nothing but text reaches the terminal", () => {
  const base = join(dir, "base.json");
  const bench = runCliIn(dir, "bench", "--size", "2m", "--op", "read", "--bs", "4k", "--ios", "8", "--repeat", "1", "--json");
  expect(bench.code).toBe(0);
  writeFileSync(base, bench.stdout);
  const crafted = JSON.parse(bench.stdout);
  crafted.results[0].op = "read\x1b]0;PWNED\x07\r\x1b[2Kresult: nothing regressed";
  const other = join(dir, "crafted.json");
  writeFileSync(other, JSON.stringify(crafted));
  const compared = runCliIn(dir, "compare", base, other);
  expect(compared.stdout + compared.stderr).not.toMatch(CONTROLS);
  expect(compared.stdout).toContain("read\\u001b]0;PWNED\\u0007\\u000d");
  const missing = runCliIn(dir, "probe", join(dir, "no\x1b[31mfile"));
  expect(missing.code).toBe(2);
  expect(missing.stderr).not.toMatch(CONTROLS);
  expect(missing.stderr).toContain("no\\u001b[31mfile");
  expect(readFileSync(other, "utf8")).toContain("PWNED"); // the input itself is untouched
});
