/**
 * Exported fio jobs carry no command and no other file: a disk path fio would read as something
 * else (a line break starting another option, `${VAR}`, `$keywords`, a ';' or '#' comment, a
 * '\\', blanks fio strips) is refused before the run, exit 2, nothing written; a ':' is escaped
 * as fio documents. The emitted job, run under fio, touches no file but the named disk.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fioFilenameValue } from "../src/bench/fio-job";
import { randomBytes, runCliIn, scratchDir } from "./helpers";

const fio = Bun.which("fio");

describe("the disk path in filename=", () => {
  test("read literally or refused, naming why", () => {
    expect(fioFilenameValue("/data/disk.img")).toBe("/data/disk.img");
    expect(fioFilenameValue("/data/a:b.img")).toBe("/data/a\\:b.img");
    for (const [path, why] of [
      ["/data/a\nexec_prerun=touch /tmp/pwned", "control character"],
      ["/data/${HOME}.img", "'$'"],
      ["/data/$pagesize+1", "'$'"],
      ["/data/a;b", "';'"],
      ["/data/a#b", "'#'"],
      ["/data/a\\b", "'\\'"],
      [" /data/a", "blank"],
      ["/data/a\t", "control character"],
      ["", "empty"],
    ] as const) {
      expect(() => fioFilenameValue(path)).toThrow(why);
    }
  });
});

describe("bench --emit-fio with hostile disk paths", () => {
  const dir = scratchDir("fio-job");
  const marker = join(dir, "command-ran"); // what the injected option would make, run from dir
  const refused = ["a\nexec_prerun=touch command-ran", "x${HOME}y", "a;b", "a#b.img"];
  for (const name of refused) {
    test(`${JSON.stringify(name)}: refused before the run, exit 2, nothing written, no command`, () => {
      const disk = join(dir, name);
      const bytes = randomBytes(2 ** 20, 3);
      writeFileSync(disk, bytes);
      const job = join(dir, "refused.fio");
      const result = runCliIn(dir, "bench", "--disk", disk, "--force", "--op", "write", "--bs", "4k", "--ios", "8", "--repeat", "1", "--emit-fio", job);
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stderr).toContain("--emit-fio: the disk path");
      expect(existsSync(job)).toBe(false);
      expect(readFileSync(disk)).toEqual(Buffer.from(bytes)); // the bench did not run
      expect(existsSync(marker)).toBe(false);
    });
  }

  test.skipIf(fio === null)(`a ':' in the path: the job names that one file, and fio, running it, touches nothing else${fio === null ? " (skipped: fio is not installed)" : ""}`, () => {
    const work = join(dir, "colon");
    mkdirSync(work);
    const disk = join(work, "a:b.img");
    writeFileSync(disk, randomBytes(4 * 2 ** 20, 4));
    const job = join(dir, "colon.fio");
    expect(runCliIn(work, "bench", "--disk", disk, "--force", "--op", "read,write", "--bs", "4k", "--ios", "8", "--repeat", "1", "--emit-fio", job).code).toBe(0);
    expect(readFileSync(job, "utf8")).toContain(`filename=${work}/a\\:b.img`);
    const before = readdirSync(work).sort();
    const ran = Bun.spawnSync([fio!, job], { cwd: work });
    expect({ code: ran.exitCode, stderr: ran.stderr.toString() }).toMatchObject({ code: 0 });
    expect(readdirSync(work).sort()).toEqual(before); // no 'a', no './b'
    expect(existsSync(marker)).toBe(false);
  });
});

describe("the regions of the job's threads", () => {
  const dir = scratchDir("fio-regions");
  test("are the bench's own: whole disk blocks of --align, not pages (--threads 3 --align 65536)", () => {
    const job = join(dir, "regions.fio");
    const run = runCliIn(dir, "bench", "--size", "256m", "--threads", "3", "--align", "65536", "--op", "read", "--bs", "64k", "--ios", "30", "--repeat", "1", "--emit-fio", job);
    expect(run.code).toBe(0);
    // 256 MiB over 3 threads, in whole 64 KiB blocks: 1365 blocks each.
    const region = 1365 * 65536;
    const text = readFileSync(job, "utf8");
    expect(text).toContain(`\nsize=${region}\n`);
    expect(text).toContain(`\noffset_increment=${region}\n`);
  });
});
