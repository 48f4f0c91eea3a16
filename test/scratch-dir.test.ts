/**
 * Scratch reclaim never follows anything it did not make: a planted symlink, a directory of
 * another owner or mode, one without a complete marker, a symlinked marker, and a live run's
 * directory (its marker locked, whatever its PID) all stay; a dead run's directory goes, with
 * what is in it. Each case is a directory under a private parent, judged by `reclaimScratchDirs`.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reclaimScratchDirs, ScratchDir } from "../src/host/scratch-dir";
import { ROOT } from "./helpers";

const MARKER = ".bounce-bench-scratch";

/** A private parent for one case, removed after. */
function withParent(body: (parent: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const parent = mkdtempSync(join(tmpdir(), "scratch-dir-test-"));
    try {
      await body(parent);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  };
}

/** The code of a run in another process: it makes a scratch directory under `parent`, puts a file in it, prints where, then `tail`s. */
function runCode(parent: string, tail: string): string {
  return `const { ScratchDir } = await import(${JSON.stringify(join(ROOT, "src/host/scratch-dir.ts"))}); const d = ScratchDir.make("disk", ${JSON.stringify(parent)}); require("node:fs").writeFileSync(d.path + "/data.bin", "x"); console.log(d.path); ${tail}`;
}

/** A run killed before it could clean up. */
function deadRun(parent: string): string {
  const child = Bun.spawnSync([process.execPath, "-e", runCode(parent, 'process.kill(process.pid, "SIGKILL");')]);
  expect(child.signalCode).toBe("SIGKILL");
  return child.stdout.toString().trim();
}

/** A run that lives on (until killed): its directory, once it has said where. */
async function liveRun(parent: string): Promise<{ path: string; child: ReturnType<typeof Bun.spawn> }> {
  const child = Bun.spawn([process.execPath, "-e", runCode(parent, "await new Promise(() => {});")], { stdout: "pipe" });
  const reader = (child.stdout as ReadableStream<Uint8Array>).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return { path: text.trim(), child };
}

/** A directory that looks like a dead run's: ours, 0700, a complete marker nobody locks. */
function deadLooking(parent: string, name: string): string {
  const dir = join(parent, name);
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(dir, MARKER), "bounce-bench scratch directory; locked while its run lives\n");
  writeFileSync(join(dir, "data.bin"), "keep?");
  return dir;
}

describe("reclaim takes only provably ours and dead", () => {
  test(
    "a dead run's directory (killed, its marker's lock gone) is reclaimed, with what is in it",
    withParent((parent) => {
      const path = deadRun(parent);
      expect(existsSync(join(path, "data.bin"))).toBe(true);
      expect(reclaimScratchDirs(parent)).toEqual([path]);
      expect(existsSync(path)).toBe(false);
    }),
    30_000,
  );

  test(
    "a live run's directory stays, whatever its PID says: its marker is locked",
    withParent(async (parent) => {
      const { path, child } = await liveRun(parent);
      try {
        expect(path).toContain("bounce-bench-disk-");
        expect(reclaimScratchDirs(parent)).toEqual([]);
        expect(existsSync(join(path, "data.bin"))).toBe(true);
      } finally {
        child.kill("SIGKILL");
        await child.exited;
      }
      expect(reclaimScratchDirs(parent)).toEqual([path]);
    }),
    30_000,
  );

  test(
    "a planted symlink named like a scratch directory is never followed: what it points to stays",
    withParent((parent) => {
      const victim = deadLooking(parent, "victim");
      symlinkSync(victim, join(parent, "bounce-bench-disk-planted"));
      expect(reclaimScratchDirs(parent)).toEqual([]);
      expect(readFileSync(join(victim, "data.bin"), "utf8")).toBe("keep?");
    }),
  );

  test(
    "no marker, an empty or half-written one, or a symlinked one: a run being made, or not ours; left alone",
    withParent((parent) => {
      const none = join(parent, "bounce-bench-disk-none");
      mkdirSync(none, { mode: 0o700 });
      const empty = deadLooking(parent, "bounce-bench-disk-empty");
      writeFileSync(join(empty, MARKER), "");
      const half = deadLooking(parent, "bounce-bench-disk-half");
      writeFileSync(join(half, MARKER), "bounce-bench scratch");
      const linked = join(parent, "bounce-bench-disk-linked");
      mkdirSync(linked, { mode: 0o700 });
      const elsewhere = deadLooking(parent, "elsewhere");
      symlinkSync(join(elsewhere, MARKER), join(linked, MARKER));
      expect(reclaimScratchDirs(parent)).toEqual([]);
      for (const dir of [none, empty, half, linked, elsewhere]) expect(existsSync(dir)).toBe(true);
    }),
  );

  test(
    "another mode, or another owner: not ours",
    withParent((parent) => {
      const open = deadLooking(parent, "bounce-bench-disk-open");
      chmodSync(open, 0o755);
      const dirs = [open];
      if (process.getuid?.() === 0) {
        const theirs = deadLooking(parent, "bounce-bench-disk-theirs");
        chownSync(theirs, 65534, 65534);
        dirs.push(theirs);
      }
      expect(reclaimScratchDirs(parent)).toEqual([]);
      for (const dir of dirs) expect(readFileSync(join(dir, "data.bin"), "utf8")).toBe("keep?");
    }),
  );

  test(
    "this process's own scratch directory is live to it, and removing it lets it go",
    withParent((parent) => {
      const mine = ScratchDir.make("repro", parent);
      expect(reclaimScratchDirs(parent)).toEqual([]);
      expect(existsSync(mine.path)).toBe(true);
      mine.remove();
      expect(existsSync(mine.path)).toBe(false);
      mine.remove(); // idempotent
    }),
  );
});
