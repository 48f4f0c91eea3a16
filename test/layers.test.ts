/**
 * The dependency direction of src/ shows its architecture: each folder is a layer and imports
 * only from its own layer or lower ones. Pure layers load no native code.
 *
 *   base < native < host < memory < bounce < disk < io < bench | scenario < trace   (index: all)
 */
import { expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = join(import.meta.dir, "..", "src");
const LAYERS = ["base", "native", "host", "memory", "bounce", "disk", "io", "bench", "scenario", "trace"];
/** Layers of the same rank that must not import each other. */
const RANK: Record<string, number> = { base: 0, native: 1, host: 2, memory: 3, bounce: 4, disk: 5, io: 6, bench: 7, scenario: 7, trace: 8 };

interface Import {
  target: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : name.endsWith(".ts") ? [path] : [];
  });
}

/** The relative imports of `file` (static, dynamic and re-exports), resolved to files. */
export function importsOf(file: string, text = readFileSync(file, "utf8")): Import[] {
  const found: Import[] = [];
  const pattern = /(?:^|\n)\s*(import|export)(\s+type)?[^;]*?from\s*["'](\.[^"']*)["']|import\(\s*["'](\.[^"']*)["']\s*\)|new URL\(\s*["'](\.[^"']*)["']/g;
  for (const match of text.matchAll(pattern)) {
    const spec = match[3] ?? match[4] ?? match[5]!;
    const base = resolve(dirname(file), spec);
    const target = [base, `${base}.ts`, join(base, "index.ts")].find((candidate) => existsSync(candidate) && candidate.endsWith(".ts"));
    if (target !== undefined) found.push({ target, typeOnly: match[2] !== undefined });
  }
  return found;
}

function layerOf(file: string): string {
  const path = relative(SRC, file);
  return path.includes("/") ? path.split("/")[0]! : "index";
}

/** Every file `file` loads at run time (type-only imports load nothing). */
function runtimeClosure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const imported of importsOf(file)) if (!imported.typeOnly) runtimeClosure(imported.target, seen);
  return seen;
}

test("every module of src/ sits in a known layer folder", () => {
  const stray = sourceFiles(SRC).filter((file) => layerOf(file) !== "index" && !LAYERS.includes(layerOf(file)));
  expect(stray.map((file) => relative(SRC, file))).toEqual([]);
  expect(sourceFiles(SRC).filter((file) => layerOf(file) === "index").map((file) => relative(SRC, file))).toEqual(["index.ts"]);
});

test("no layer imports from a higher one, nor from a sibling of the same rank", () => {
  const offenders: string[] = [];
  let checked = 0;
  for (const file of sourceFiles(SRC)) {
    const from = layerOf(file);
    if (from === "index") continue;
    for (const { target } of importsOf(file)) {
      const to = layerOf(target);
      checked++;
      if (to === from) continue;
      if (to === "index" || RANK[to]! >= RANK[from]!) offenders.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`);
    }
  }
  expect(offenders).toEqual([]);
  expect(checked).toBeGreaterThan(50); // the scan does see the real imports
});

test("the planner, the alignment rules and the scenario parser load no native code", () => {
  for (const pure of ["io/planner.ts", "base/alignment-rules.ts", "scenario/format.ts", "base/value-parsers.ts"]) {
    const loaded = [...runtimeClosure(join(SRC, pure))].map((file) => relative(SRC, file));
    expect({ pure, native: loaded.filter((file) => file.startsWith("native/")) }).toEqual({ pure, native: [] });
  }
});

test("the import scanner sees every form, and tells type-only imports apart", () => {
  const file = join(SRC, "io", "planner.ts");
  const text = [
    'import { a } from "../base/errors";',
    'import type { B } from "../memory/paged-range";',
    'export { c } from "../native";',
    'const d = await import("../disk/disk");',
  ].join("\n");
  const found = importsOf(file, text).map((imported) => [relative(SRC, imported.target), imported.typeOnly]);
  expect(found).toEqual([
    ["base/errors.ts", false],
    ["memory/paged-range.ts", true],
    ["native/index.ts", false],
    ["disk/disk.ts", false],
  ]);
});
