/**
 * How bounce-bench starts and ends as a process: the npm launcher (`bin/bounce-bench.cjs`, run
 * by Node) never leaves its Bun child behind, even when it is SIGKILLed and cannot pass the
 * signal on; and a Bun that cannot start bun:ffi under a memory limit says so in one line.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, scratchDir } from "./helpers";

const dir = scratchDir("launcher");
const node = Bun.which("node");

/** The pids whose parent is `pid` (from /proc/PID/stat). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so parse after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

/** Whether `pid` is still running (a zombie nobody reaped yet has ended). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

describe("the npm launcher", () => {
  test.skipIf(node === null)(`SIGKILL of the launcher stops its Bun child, which removes its scratch files${node === null ? " (skipped: no node on PATH)" : ""}`, async () => {
    const tmp = join(dir, "tmp-for-kill");
    mkdirSync(tmp);
    // Output to files: pipes from the killed launcher's side close, and a run whose reader is
    // gone stops on its own (EPIPE), which is another test's subject.
    const stderrFile = join(dir, "kill.stderr");
    const launcher = Bun.spawn([node!, join(ROOT, "bin/bounce-bench.cjs"), "bench", "--size", "8m", "--op", "read", "--bs", "4k", "--runtime", "120"], {
      env: { ...process.env, TMPDIR: tmp },
      stdout: Bun.file(join(dir, "kill.stdout")),
      stderr: Bun.file(stderrFile),
    });
    // The run has started once its scratch directory exists; its Bun process is the launcher's child.
    for (let i = 0; i < 1200 && readdirSync(tmp).length === 0; i++) await Bun.sleep(25);
    expect(readdirSync(tmp).length).toBe(1);
    const [child] = childrenOf(launcher.pid);
    expect(child).toBeDefined();
    launcher.kill("SIGKILL");
    await launcher.exited;
    // Without the parent-death signal the child would run its 120 s: the test's limit ends it first.
    for (let i = 0; i < 2400 && running(child!); i++) await Bun.sleep(25);
    expect(running(child!)).toBe(false);
    expect(readFileSync(stderrFile, "utf8")).toContain("interrupted by SIGHUP");
    expect(readdirSync(tmp)).toEqual([]);
    expect(existsSync(tmp)).toBe(true);
  }, 90_000);
});

describe("starting", () => {
  test("a virtual memory limit too small for Bun's JIT is one line naming the limit, exit 1", () => {
    const run = Bun.spawnSync(["sh", "-c", `ulimit -v 1000000 && exec "$0" "$1" plan --gpns 1`, process.execPath, join(ROOT, "cli/bounce-bench.ts")]);
    const stderr = run.stderr.toString();
    // A Bun whose JIT fits in 1 GB would simply run the command.
    if (run.exitCode === 0) return expect(run.stdout.toString()).toContain("decision");
    expect(run.exitCode).toBe(1);
    expect(stderr).toMatch(/^bounce-bench: cannot start: [^\n]*1000000 KiB \(ulimit -v\)[^\n]*\n$/);
  });
});

describe("a reader that goes away mid-run", () => {
  test("bench | head -1: the run stops as on a signal, removes its scratch disk and tracing, and exits 141", () => {
    const tmp = join(dir, "tmp-for-pipe");
    mkdirSync(tmp);
    const cli = `"${process.execPath}" "${join(ROOT, "cli/bounce-bench.ts")}"`;
    const run = Bun.spawnSync(["bash", "-c", `set -o pipefail; ${cli} bench --size 8m --op read --bs 4k,8k,16k --runtime 1 --repeat 1 | head -1`], { env: { ...process.env, TMPDIR: tmp } });
    expect(run.exitCode).toBe(141);
    expect(run.stdout.toString()).toStartWith("bounce-bench ");
    // stderr is still open: it says what happened.
    expect(run.stderr.toString()).toBe("bounce-bench: interrupted by SIGPIPE: partial results above; scratch files removed\n");
    expect(readdirSync(tmp)).toEqual([]);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(tmp);
  }, 60_000);
});
