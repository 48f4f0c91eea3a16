/**
 * No file is replaced through a second name: replacing writes a new file and renames it over the
 * name, so a hard link's other name keeps its bytes (`image create --force`, `report --html
 * --force`); a symlinked `--disk` is never written, even with `--force`; and no output of a run
 * may name another output or an input of it, checked before the run.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, linkSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes, runCliIn, scratchDir } from "./helpers";

const dir = scratchDir("second-names");
const run = (...args: string[]) => runCliIn(dir, ...args);

describe("replacing never truncates a file with another name", () => {
  test("image create --force over a hard link: the other name keeps its bytes", () => {
    const victim = join(dir, "victim.img");
    const bytes = randomBytes(8192, 1);
    writeFileSync(victim, bytes);
    const link = join(dir, "link.img");
    linkSync(victim, link);
    expect(run("image", "create", link, "--size", "1M", "--force").code).toBe(0);
    expect(readFileSync(victim)).toEqual(Buffer.from(bytes));
    expect(statSync(link).size).toBe(2 ** 20);
    expect(statSync(link).ino).not.toBe(statSync(victim).ino);
  });

  test("report --html --force over a hard link: the other name keeps its bytes", () => {
    const runJson = join(dir, "run.json");
    const bench = run("bench", "--size", "2m", "--op", "read", "--bs", "4k", "--ios", "8", "--repeat", "1", "--output", runJson, "--format", "json");
    expect(bench.code).toBe(0);
    const victim = join(dir, "notes.txt");
    writeFileSync(victim, "my notes\n");
    const html = join(dir, "out.html");
    linkSync(victim, html);
    expect(run("report", runJson, "--html", html, "--force").code).toBe(0);
    expect(readFileSync(victim, "utf8")).toBe("my notes\n");
    expect(readFileSync(html, "utf8")).toContain("<svg");
    // The report's own input is never its output.
    const self = run("report", runJson, "--html", runJson, "--force");
    expect([self.code, self.stderr]).toEqual([2, expect.stringContaining("names the same file as RUN.json")]);
  });
});

describe("a symlinked --disk is never written", () => {
  test("io and bench --force refuse it, naming it; the file it points to is untouched", () => {
    const target = join(dir, "target.img");
    const bytes = randomBytes(2 ** 20, 2);
    writeFileSync(target, bytes);
    const link = join(dir, "disk-link.img");
    symlinkSync(target, link);
    const guest = join(dir, "guest.img");
    writeFileSync(guest, randomBytes(2 ** 20, 3));
    const io = run("io", "--guest", guest, "--disk", link, "--op", "write", "--gpns", "0", "--at", "0");
    expect(io.code).toBe(2);
    expect(io.stderr).toContain("is a symbolic link; bounce-bench writes no disk through one");
    const bench = run("bench", "--disk", link, "--force", "--op", "write", "--bs", "4k", "--ios", "8", "--repeat", "1");
    expect(bench.code).toBe(2);
    expect(bench.stderr).toContain("is a symbolic link");
    expect(readFileSync(target)).toEqual(Buffer.from(bytes));
    // Reading through it is fine: nothing is written.
    expect(run("io", "--guest", guest, "--disk", link, "--op", "read", "--gpns", "0", "--at", "0").code).toBe(0);
  });
});

describe("no output names another output or an input of the same run", () => {
  test("--output and --emit-fio the same file, or naming --disk or --guest: exit 2 before the run", () => {
    const disk = join(dir, "collide-disk.img");
    const bytes = randomBytes(2 ** 20, 4);
    writeFileSync(disk, bytes);
    const out = join(dir, "both.out");
    for (const [args, says] of [
      [["--output", out, "--emit-fio", out], "--output"],
      [["--output", disk, "--force"], "names the same file as --disk"],
      [["--emit-fio", disk, "--force"], "names the same file as --disk"],
    ] as const) {
      const result = run("bench", "--disk", disk, "--force", "--op", "write", "--bs", "4k", "--ios", "8", "--repeat", "1", ...args);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr).toContain(says);
      expect(readFileSync(disk)).toEqual(Buffer.from(bytes)); // the bench did not run
      expect(existsSync(out)).toBe(false);
    }
  });
});
