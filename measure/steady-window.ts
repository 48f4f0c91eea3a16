/**
 * A run's CPU per IO over its steady middle, measured from outside alike for any tool: the
 * process's CPU time (every thread of it and of its children: fio's job process, io_uring's
 * SQPOLL thread, Bun's JIT and GC threads), and the IOs its disk's block device completed, both
 * read at the window's two ends. Start-up, the warm-up and the end of the run fall outside the
 * window, so nothing has to be taken off: the ladder's earlier way (each run less a short
 * calibration run of its own) carried the calibration run's own noise into every figure
 * (docs/performance.md).
 *
 * CPU time is the scheduler's (`/proc/PID/task/TID/schedstat`, nanoseconds), summed over the
 * process tree. IOs are the device's sectors read and written (`/sys/dev/block/M:m/stat`) over
 * the IO size, so that a request split or merged on the way still counts as the IOs asked for;
 * another process's IO to the same device in the window would count too. Without a device (the
 * null engine) the tool's own IOPS over the window's length stands in.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";

/** The window, in seconds after the process is spawned. */
export interface Window {
  fromSeconds: number;
  toSeconds: number;
}

export interface WindowFigures {
  /** The run's JSON output. */
  output: string;
  /** CPU time of the process tree over the window, per IO the device completed in it. */
  cpuNsPerIo: number;
  /** IOs per second in the window, as the device counted them (or as the tool did, with no device). */
  iops: number;
}

/**
 * The window a run spends in its measured phase whatever its start-up: from 1 s (a quarter of
 * a shorter run) after the warm-up would end if the process started at once, to a fifth of a
 * second (a tenth of a shorter run) before the measured phase would end if it did. A start-up
 * longer than that first second moves the window's start into the warm-up's end, which, unlike
 * its start, does the same IO as the measured phase.
 */
export function steadyWindow(rampSeconds: number, seconds: number): Window {
  return { fromSeconds: rampSeconds + Math.min(1, seconds / 4), toSeconds: rampSeconds + seconds - Math.min(0.2, seconds / 10) };
}

/**
 * The block device statistics file of the device `path` is (a block device) or is on (a file),
 * or null for a file on no block device (tmpfs).
 */
export function deviceStatFile(path: string): string | null {
  const stat = statSync(path);
  const { major, minor } = deviceNumbers(stat.isBlockDevice() ? stat.rdev : stat.dev);
  const file = `/sys/dev/block/${major}:${minor}/stat`;
  try {
    readFileSync(file);
    return file;
  } catch {
    return null;
  }
}

/** A device number (`st_dev`, `st_rdev`) taken apart as glibc's `major()` and `minor()` do. */
export function deviceNumbers(dev: number | bigint): { major: number; minor: number } {
  const d = BigInt(dev);
  return {
    major: Number(((d & 0xfff00n) >> 8n) | ((d & 0xfffff00000000000n) >> 32n)),
    minor: Number((d & 0xffn) | ((d & 0xffffff00000n) >> 12n)),
  };
}

/** Sectors (512 bytes) read and written so far, from a block device's `stat` file. */
function sectorsDone(statFile: string): number {
  const fields = readFileSync(statFile, "utf8").trim().split(/\s+/).map(Number);
  return fields[2]! + fields[6]!;
}

/** PIDs of `pid` and every process below it. */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name may hold spaces and parentheses: the fields follow the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // gone since the listing
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

/** CPU time so far of every thread of `pid` and of the processes below it, in nanoseconds. */
export function treeCpuNs(pid: number): number {
  let total = 0;
  for (const member of processTree(pid)) {
    let threads: string[];
    try {
      threads = readdirSync(`/proc/${member}/task`);
    } catch {
      continue; // exited
    }
    for (const tid of threads) {
      try {
        total += Number(readFileSync(`/proc/${member}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // exited
      }
    }
  }
  return total;
}

/**
 * Runs `argv` to its end, reading CPU time and device IOs at the window's two ends; `ioBytes`
 * is the size of one IO. `ownIops` reads the tool's IOPS from its output, for a run with no
 * device (`statFile` null). Throws with the tool's output if it fails, or if it ends before
 * the window does.
 */
export async function runInWindow(argv: string[], window: Window, statFile: string | null, ioBytes: number, ownIops: (output: string) => number): Promise<WindowFigures> {
  const spawned = performance.now();
  const child = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const output = new Response(child.stdout).text();
  const errors = new Response(child.stderr).text();
  const at = async (seconds: number) => {
    await Bun.sleep(Math.max(0, spawned + seconds * 1000 - performance.now()));
    return { ns: performance.now() * 1e6, cpuNs: treeCpuNs(child.pid), sectors: statFile === null ? 0 : sectorsDone(statFile), running: child.exitCode === null };
  };
  const from = await at(window.fromSeconds);
  const to = await at(window.toSeconds);
  const code = await child.exited;
  const text = await output;
  if (code !== 0) throw new Error(`${argv.join(" ")}: exit ${code}: ${await errors}${text}`);
  if (!from.running || !to.running) throw new Error(`${argv.join(" ")}: ended before its measuring window (${window.fromSeconds} to ${window.toSeconds} s) did`);
  const elapsedSeconds = (to.ns - from.ns) / 1e9;
  const ios = statFile === null ? ownIops(text) * elapsedSeconds : ((to.sectors - from.sectors) * 512) / ioBytes;
  return { output: text, cpuNsPerIo: ios > 0 ? (to.cpuNs - from.cpuNs) / ios : 0, iops: ios / elapsedSeconds };
}
