/**
 * The real `bounce-bench` executable: exit codes, one-line errors, --json errors, and that bad
 * input creates or changes no file.
 */
import { VERSION } from "../cli/version";
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { main } from "../cli/main";
import { ROOT, runCliIn, scratchDir } from "./helpers";

const dir = scratchDir("cli");
const runCli = (...args: string[]) => runCliIn(dir, ...args);

/** Asserts a usage-style failure: exit 2, one line on stderr, no stack trace. */
function expectBadInput(result: { code: number; stderr: string }, fragment: string): void {
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(/^bounce-bench: [^\n]+\n$/);
  expect(result.stderr).toContain(fragment);
  expect(result.stderr).not.toContain("    at ");
}

describe("global", () => {
  test("--help explains the tool and lists its commands; --version prints the version", () => {
    const help = runCli("--help");
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("guest memory meets O_DIRECT");
    expect(help.stdout).toContain("image");
    expect(help.stdout).toContain("Exit codes");
    const version = runCli("--version");
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version);
  });

  test("an unknown command or option is a usage error", () => {
    expectBadInput(runCli("frobnicate"), "unknown command 'frobnicate'");
    expectBadInput(runCli("image", "create", "x.img", "--size", "4k", "--bogus"), "unknown option '--bogus'");
  });

  test("main() runs in-process with the output streams given", async () => {
    let out = "";
    let err = "";
    const code = await main(["image", "create", join(dir, "inproc.img"), "--size", "8k", "--json"], {
      stdout: (text) => void (out += text),
      stderr: (text) => void (err += text),
    });
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ tool: "bounce-bench", version: VERSION, schemaVersion: 3, command: "image create", path: join(dir, "inproc.img"), size: 8192, sparse: true });
    expect(err).toBe("");
  });
});

describe("image create", () => {
  test("creates a sparse file of the given size", () => {
    const path = join(dir, "new.img");
    const result = runCli("image", "create", path, "--size", "1MiB");
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`created ${path}: 1048576 bytes (sparse)\n`);
    expect(statSync(path).size).toBe(2 ** 20);
    expect(statSync(path).blocks).toBe(0);
  });

  test("refuses to replace an existing file without --force, and keeps its bytes", () => {
    const path = join(dir, "keep.img");
    writeFileSync(path, "keep me");
    expectBadInput(runCli("image", "create", path, "--size", "4k"), "already exists (use --force to replace it)");
    expect(readFileSync(path, "utf8")).toBe("keep me");
    expect(runCli("image", "create", path, "--size", "4k", "--force").code).toBe(0);
    expect(statSync(path).size).toBe(4096);
  });

  test("a bad size creates nothing", () => {
    for (const size of ["-1", "4q", "1.5k", "", "0", "99999999999999999999"]) {
      const path = join(dir, `bad-${size || "empty"}.img`);
      const result = runCli("image", "create", path, "--size", size);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^bounce-bench: [^\n]+\n$/);
      expect(existsSync(path)).toBe(false);
    }
  });

  test("with --json, the error is a JSON document on stdout", () => {
    const result = runCli("image", "create", join(dir, "j.img"), "--size", "12x", "--json");
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toEqual({
      tool: "bounce-bench",
      version: VERSION,
      schemaVersion: 3,
      command: "image create",
      error: { code: "INVALID_INPUT", message: '--size: "12x" is not a size (e.g. 4096, 0x1000, 4k, 1MiB)' },
    });
    expect(result.stderr).toBe("");
  });

  test("never touches /dev", () => {
    expectBadInput(runCli("image", "create", "/dev/null", "--size", "4k", "--force"), "never creates or replaces anything under /dev");
  });
});

describe("a reader that goes away", () => {
  test("output into a closed pipe stops quietly: no error report, exit 141 as for SIGPIPE", () => {
    const cli = `${JSON.stringify(process.execPath)} ${JSON.stringify(join(ROOT, "cli/bounce-bench.ts"))}`;
    for (const flags of ["", "--json"]) {
      const script = `${cli} plan --seg 0-20000/2 --seg 0@512+100 ${flags} 2>err.txt | head -c 10 >/dev/null; echo "\${PIPESTATUS[0]}"; cat err.txt`;
      const result = Bun.spawnSync(["bash", "-c", script], { cwd: dir });
      expect(result.stdout.toString()).toBe("141\n");
    }
  });
});
