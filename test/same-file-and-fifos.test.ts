/**
 * Two classes of hostile input, generated over commands and spellings: one file named as both
 * guest and disk (by the same path, another spelling, a hard link, a symlink) is refused before
 * anything is created or written; a FIFO anywhere a file is expected is refused without ever
 * blocking. Every case: exit 2, one line, every file byte for byte as it was.
 */
import { describe, expect, test } from "bun:test";
import { linkSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileBytes, randomBytes, runCliIn, scratchDir } from "./helpers";

const dir = scratchDir("same-file");
const image = join(dir, "image.img");
const original = randomBytes(1 << 20, 31);
writeFileSync(image, original);
linkSync(image, join(dir, "hard.img"));
symlinkSync("image.img", join(dir, "link.img"));

const run = (...args: string[]) => runCliIn(dir, ...args);

describe("the same file as guest and disk", () => {
  const spellings: [string, string][] = [
    ["image.img", "image.img"],
    ["image.img", "./image.img"],
    ["image.img", join(dir, "image.img")],
    ["hard.img", "image.img"],
    ["link.img", "image.img"],
  ];
  const commands: [string, (guest: string, disk: string) => string[]][] = [
    ["io read", (guest, disk) => ["io", "--guest", guest, "--disk", disk, "--op", "read", "--gpns", "0-1", "--at", "0"]],
    ["io write", (guest, disk) => ["io", "--guest", guest, "--disk", disk, "--op", "write", "--gpns", "0", "--at", "4096"]],
    ["bench", (guest, disk) => ["bench", "--guest", guest, "--disk", disk, "--force", "--op", "read,write", "--bs", "4k", "--ios", "10"]],
  ];
  for (const [name, command] of commands) {
    test(`${name}: refused whatever the spelling, nothing written`, () => {
      for (const [guest, disk] of spellings) {
        const result = run(...command(guest, disk));
        expect({ guest, disk, code: result.code }).toEqual({ guest, disk, code: 2 });
        expect(result.stderr).toMatch(/^bounce-bench: [^\n]*same file[^\n]*\n$/);
        expect(fileBytes(image)).toEqual(original);
      }
    });
  }

  test("bench with two new paths that name one file creates nothing", () => {
    const result = run("bench", "--guest", "fresh.img", "--disk", "./fresh.img", "--ios", "10");
    expect(result.code).toBe(2);
    expect(spawnSync("ls", [dir], { encoding: "utf8" }).stdout).not.toContain("fresh.img");
  });
});

const fifos = spawnSync("mkfifo", [join(dir, "pipe.json")]).status === 0;
describe.skipIf(!fifos)(`FIFOs are refused without blocking${fifos ? "" : " (skipped: mkfifo failed)"}`, () => {
  const pipe = join(dir, "pipe.json");
  if (fifos) {
    mkdirSync(join(dir, "corpus"), { recursive: true });
    spawnSync("mkfifo", [join(dir, "corpus", "a.json")]);
  }
  const cases: [string, string[], string][] = [
    ["a scenario file", ["repro", pipe], "is a fifo"],
    ["a scenario directory holding one", ["repro", join(dir, "corpus")], "is a fifo"],
    ["io --disk", ["io", "--guest", "image.img", "--disk", pipe, "--op", "read", "--gpns", "0", "--at", "0"], "is a fifo"],
    ["io --guest", ["io", "--guest", pipe, "--disk", "image.img", "--op", "write", "--gpns", "0", "--at", "0"], "not a fifo"],
    ["probe", ["probe", pipe], "is a fifo"],
    ["plan --disk", ["plan", "--gpns", "0", "--disk", pipe], "fifo"],
  ];
  for (const [name, args, fragment] of cases) {
    test(name, () => {
      const result = run(...args);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^bounce-bench: [^\n]+\n$/);
      expect(result.stderr).toContain(fragment);
      expect(fileBytes(image)).toEqual(original);
    });
  }
});
