/**
 * The native boundary is small: only src/native/ may import bun:ffi.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const ROOT = join(import.meta.dir, "..");
const SCANNED = ["src", "cli", "test", "measure", "examples"];
const ALLOWED = join("src", "native") + "/";
const FFI_IMPORT = /(from\s*["']bun:ffi["'])|(import\s*\(\s*["']bun:ffi["'])|(require\s*\(\s*["']bun:ffi["'])|(import\s*["']bun:ffi["'])/;

function sourceFiles(dir: string): string[] {
  let files: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files = files.concat(sourceFiles(path));
    else if (/\.(ts|js|mjs|cjs|tsx)$/.test(name)) files.push(path);
  }
  return files;
}

test("only src/native/ imports bun:ffi", () => {
  const offenders: string[] = [];
  let nativeImports = 0;
  for (const top of SCANNED) {
    let files: string[] = [];
    try {
      files = sourceFiles(join(ROOT, top));
    } catch {
      continue; // a directory that does not exist yet
    }
    for (const file of files) {
      const path = relative(ROOT, file);
      if (!FFI_IMPORT.test(readFileSync(file, "utf8"))) continue;
      if (path.startsWith(ALLOWED)) nativeImports++;
      else offenders.push(path);
    }
  }
  expect(offenders).toEqual([]);
  expect(nativeImports).toBeGreaterThan(0); // the scan does see the real imports
});

test("the boundary check recognises every import form", () => {
  const ffi = ["bun", "ffi"].join(":"); // spelled apart so this file does not match itself
  const forms = [`import { dlopen } from "${ffi}";`, `const f = await import('${ffi}')`, `require("${ffi}")`, `import "${ffi}";`];
  for (const form of forms) expect(FFI_IMPORT.test(form)).toBe(true);
  expect(FFI_IMPORT.test(`// mentions ${ffi} in a comment`)).toBe(false);
});
