/**
 * Error codes come from one catalogue: every code the sources raise is in it (or is an errno
 * name the kernel knows), and an error's kind is the catalogue's unless it is an errno's.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { BounceBenchError, ERROR_CATALOGUE, InvalidInputError } from "../src/base/errors";
import { errnoName, OsError } from "../src/native";
import { ROOT } from "./helpers";

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : name.endsWith(".ts") ? [path] : [];
  });
}

/** errno names 1 .. 200, as the errno table names them. */
const ERRNO_NAMES = new Set(Array.from({ length: 200 }, (_, i) => errnoName(i + 1)).filter((name) => !name.startsWith("ERRNO_")));

test("every error code raised in src/ and cli/ is in the catalogue, or is an errno name", () => {
  const raised = new Set<string>();
  for (const file of [...sources(join(ROOT, "src")), ...sources(join(ROOT, "cli"))]) {
    const text = readFileSync(file, "utf8");
    // `new BounceBenchError("CODE", ...`, `super("CODE", ...`, and `(cond ? "A" : "B", ...`.
    const pattern = /(?:new BounceBenchError|super)\(\s*(?:\w+\s*\?\s*)?"([A-Z_0-9]+)"(?:\s*:\s*"([A-Z_0-9]+)")?/g;
    for (const match of text.matchAll(pattern)) match.slice(1).forEach((code) => code !== undefined && raised.add(code));
  }
  expect(raised.size).toBeGreaterThan(10); // the scan sees the real raises
  const unknown = [...raised].filter((code) => !(code in ERROR_CATALOGUE) && !ERRNO_NAMES.has(code));
  expect(unknown).toEqual([]);
});

test("an error's kind is its code's in the catalogue; an errno code carries the kind given where it is raised", () => {
  expect(new BounceBenchError("MISMATCH", "x").kind).toBe("check");
  expect(new BounceBenchError("NO_DIRECT_IO", "x").kind).toBe("io");
  expect(new InvalidInputError("x").kind).toBe("input");
  expect(new BounceBenchError("ENOENT", "x", { kind: "input" }).kind).toBe("input");
  expect(new OsError(22, "preadv", "").kind).toBe("io");
  for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
    expect(new BounceBenchError(code as keyof typeof ERROR_CATALOGUE, "x").kind).toBe(entry.kind);
    expect(entry.means.length).toBeGreaterThan(10);
  }
});
