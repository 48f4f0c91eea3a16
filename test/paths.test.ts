/**
 * Paths the user names, as a hostile user would write them. Every path error on every option
 * that takes a path (a file on the way, a missing parent, a symlink loop, a name too long) is
 * bad input: exit 2, one line naming the option or role and the path, nothing changed. And
 * creating is judged by where a path lands: never under /dev (by any spelling), never through a
 * symlink, never over anything but a regular file named with --force.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileBytes, randomBytes, ROOT, runCliIn, scratchDir } from "./helpers";

const dir = scratchDir("paths");
writeFileSync(join(dir, "file"), "not a directory");
writeFileSync(join(dir, "guest.img"), randomBytes(1 << 20, 5));
writeFileSync(join(dir, "disk.bin"), randomBytes(1 << 20, 6));
symlinkSync("loop-b", join(dir, "loop-a"));
symlinkSync("loop-a", join(dir, "loop-b"));
symlinkSync("disk.bin", join(dir, "disk-link"));
symlinkSync("/dev/shm", join(dir, "shm-link"));
const SHM_NAMES = ["bounce-bench-paths-test-a", "bounce-bench-paths-test-b"];
afterAll(() => SHM_NAMES.forEach((name) => rmSync(join("/dev/shm", name), { force: true })));

/** Every file of the scratch directory, byte for byte (the symlinks' targets included). */
function snapshot(): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir)
      .filter((name) => !name.startsWith("loop-") && name !== "shm-link")
      .map((name) => [name, Buffer.from(fileBytes(join(dir, name))).toString("base64")]),
  );
}

const run = (...args: string[]) => runCliIn(dir, ...args);

const BAD_PATHS: [string, string][] = [
  ["file/inside", "ENOTDIR"],
  ["missing/inside", "ENOENT"],
  ["loop-a", "ELOOP"],
  ["n".repeat(300), "ENAMETOOLONG"],
];

const USES: [string, (path: string) => string[]][] = [
  ["io --disk", (path) => ["io", "--guest", "guest.img", "--disk", path, "--op", "read", "--gpns", "0", "--at", "0"]],
  ["io --guest", (path) => ["io", "--guest", path, "--disk", "disk.bin", "--op", "write", "--gpns", "0", "--at", "0"]],
  ["image create", (path) => ["image", "create", path, "--size", "4k"]],
  ["probe", (path) => ["probe", path]],
  ["plan --disk", (path) => ["plan", "--gpns", "0", "--disk", path]],
  ["bench --disk", (path) => ["bench", "--disk", path, "--ios", "5", "--op", "read", "--bs", "4k"]],
  ["bench --guest", (path) => ["bench", "--guest", path, "--ios", "5", "--op", "read", "--bs", "4k"]],
  ["bench --emit-fio", (path) => ["bench", "--emit-fio", path, "--ios", "5", "--op", "read", "--bs", "4k"]],
  ["repro", (path) => ["repro", path]],
];

describe("path errors are bad input on every option that takes a path", () => {
  for (const [use, args] of USES) {
    test(use, () => {
      const before = snapshot();
      for (const [path, errno] of BAD_PATHS) {
        const result = run(...args(path));
        expect({ path, code: result.code }).toEqual({ path, code: 2 });
        expect(result.stderr).toMatch(/^bounce-bench: [^\n]+\n$/);
        // Creating at a symlink loop is refused for being a symlink, before any open could loop.
        const said = [errno, "no such", ...(errno === "ELOOP" ? ["is a symbolic link"] : [])].some((words) => result.stderr.includes(words));
        expect({ path, said }).toEqual({ path, said: true });
        expect(result.stderr).not.toContain("internal error");
      }
      expect(snapshot()).toEqual(before);
    });
  }
});

test("repro over a directory with a symlink back up runs each scenario once, and never loops", () => {
  const corpus = join(dir, "looping-corpus");
  mkdirSync(join(corpus, "sub"), { recursive: true });
  symlinkSync("..", join(corpus, "sub", "up"));
  writeFileSync(join(corpus, "one.json"), readFileSync(join(ROOT, "scenarios/read-only-request.json")));
  const result = Bun.spawnSync([process.execPath, join(ROOT, "cli/bounce-bench.ts"), "repro", corpus, "--json"], { cwd: dir, timeout: 30_000 });
  expect(result.exitCode).toBe(0);
  expect(JSON.parse(result.stdout.toString()).scenarios).toHaveLength(1);
});

describe("creating: where a path really lands", () => {
  test("never under /dev, whatever the spelling: //dev, a symlinked parent", () => {
    for (const [spelling, name] of [[`//dev/shm/${SHM_NAMES[0]}`, SHM_NAMES[0]], [`shm-link/${SHM_NAMES[1]}`, SHM_NAMES[1]]] as const) {
      for (const args of [["image", "create", spelling, "--size", "4k"], ["bench", "--emit-fio", spelling, "--ios", "5", "--op", "read", "--bs", "4k"]]) {
        const result = run(...args);
        expect({ spelling, code: result.code }).toEqual({ spelling, code: 2 });
        expect(result.stderr).toContain("never creates or replaces anything under /dev");
        expect(existsSync(join("/dev/shm", name))).toBe(false);
      }
    }
  });

  test("never through a symlink, even with --force: the target keeps its bytes", () => {
    const before = readFileSync(join(dir, "disk.bin"));
    for (const args of [["image", "create", "disk-link", "--size", "4k", "--force"], ["bench", "--emit-fio", "disk-link", "--force", "--ios", "5", "--op", "read", "--bs", "4k"]]) {
      const result = run(...args);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("is a symbolic link");
    }
    expect(readFileSync(join(dir, "disk.bin"))).toEqual(before);
  });

  test("--emit-fio is written only once every other option has been checked", () => {
    for (const bad of [["--threads", "100"], ["--bs", "1000"], ["--qd", "4", "--engine", "sync"], ["--runtime", "0"]]) {
      const result = run("bench", "--emit-fio", "early.fio", ...bad, "--op", "read");
      expect({ bad, code: result.code }).toEqual({ bad, code: 2 });
      expect(existsSync(join(dir, "early.fio"))).toBe(false);
    }
  });

  test("--emit-fio writes a new file, and replaces only a regular one with --force", () => {
    expect(run("bench", "--emit-fio", "job.fio", "--ios", "5", "--op", "read", "--bs", "4k").code).toBe(0);
    expect(readFileSync(join(dir, "job.fio"), "utf8")).toContain("[global]");
    expect(run("bench", "--emit-fio", "job.fio", "--ios", "5", "--op", "read", "--bs", "4k").code).toBe(2);
    expect(run("bench", "--emit-fio", ".", "--force", "--ios", "5", "--op", "read", "--bs", "4k").stderr).toContain("is a directory");
  });
});
