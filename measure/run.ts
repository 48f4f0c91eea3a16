/**
 * `npm run bench`: bounce-bench next to fio on the same file, block size, queue depth and
 * direct flag, in alternating runs, reported as medians and ratios. Not a test: it prints
 * numbers, it asserts nothing.
 *
 *   npm run bench                      all comparisons, 5 rounds of 3 s each
 *   npm run bench -- --rounds 3 --seconds 2 --only null,sync-4k
 *   npm run bench -- --json            the medians as one JSON document
 *
 * CPU time per IO: bounce-bench's is the process's CPU time over the measured interval (every
 * thread, io_uring workers included) divided by IOs; fio's is (usr_cpu + sys_cpu) x job runtime
 * / IOs from its JSON output, also the whole process's.
 * Without fio on PATH the bounce-bench side still runs and says fio is missing.
 *
 * Bounce vs direct runs both cases in one invocation (same guest pages, bounce buffers laid
 * out physically like them), the rounds as its interleaved repeats, each after a ramp, paired
 * round by round; on the disk file, as root on a scratch loop device (a real block device of
 * its own over a file; on Linux 6.18 it still submits to that file from the calling thread:
 * `loop_queue_rq` and the virtio notification show up in the process's profile), and with no
 * device. `npm run bench:pairs` measures the same IO by IO.
 *
 * The io_uring ladder (`ladder-*`, `--only ladder` runs them alone): 4 KiB random reads at
 * depth 32 and 64 KiB at depth 16, rung by rung (plain; + registered files; + fixed buffers;
 * + SQPOLL; DEFER_TASKRUN in place of SQPOLL), each against fio with the same options, on the
 * disk file, on a loop device over tmpfs (root only: a block device with no device behind it),
 * and with the null engine (no ring: the floor). CPU per IO is measured alike for both tools,
 * from outside over each run's steady middle (`externalCpu`, `steady-window.ts`), so that
 * io_uring's SQPOLL thread, which belongs to the process, counts for both: fio's own figure
 * counts its job thread alone (RUSAGE_THREAD). fio 3.33 sets up its ring with DEFER_TASKRUN by
 * itself (`LADDER_RUNGS`), and sends one buffer as IORING_OP_READ by default (its
 * `nonvectored`): bounce-bench runs every rung with `--nonvectored`, so that both send the same
 * opcodes. As root both read into the same pages, a file on a scratch tmpfs (`ladderMemory`):
 * shared memory, as a VMM's guest RAM is, whose pages the kernel marks dirty after a read its
 * own way, and the same physical runs for both, which decide how many DMA segments an IO makes
 * (separately allocated, fio's 64 KiB buffers fell in 8 to 16 runs and overflowed the virtio
 * disk's queue, bounce-bench's in one: docs/performance.md). fio 3.33 maps a file given as
 * `--iomem=mmapshared:FILE` shared; without a file it maps private memory (MAP_PRIVATE).
 *
 * Registered bounce (`regbounce-*`): bouncing into a registered pool (`--fixedbufs bounce`)
 * against direct IO from unregistered guest pages, in one run with interleaved repeats, at
 * 4 KiB, 16 KiB, 64 KiB and 1 MiB, on the disk file and on the loop device over tmpfs.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { table } from "../cli/format";
import { difference, spreadOf } from "../src/bench/statistics";
import { createFilledDisk } from "../src/bench/workspace";
import { scratchDiskUnavailable } from "../src/host/scratch-disks";
import { loopOverTmpfs, sharedMemoryFile, type ScratchDevice } from "./scratch-devices";
import { deviceStatFile, runInWindow, steadyWindow } from "./steady-window";
import { numberFlag, scriptOptions } from "./script-options";

interface Sample {
  mibPerSec: number;
  iops: number;
  cpuNsPerIo: number;
  /** bounce-bench's guest <-> bounce copy rate (bounced cases only). */
  copyGiBPerSec?: number;
  /** bounce-bench's kernel calls and disk bytes per IO. */
  callsPerIo?: number;
  diskBytesPerIo?: number;
  /** Physically contiguous runs of the buffer the device saw (root only). */
  physicalSegments?: number | null;
  /** IOs per second the device completed in the measuring window (`externalCpu`). */
  windowIops?: number;
}

type Command = string[] | (() => string[]);
const resolve = (command: Command): string[] => (typeof command === "function" ? command() : command);

interface Comparison {
  name: string;
  /** What the comparison is checked against, in words. */
  target: string;
  /** bounce-bench's arguments, or what makes them when first run (a device made on demand). */
  bounceBench: Command;
  fio: Command | null;
  /** A second bounce-bench run to compare with instead of fio. */
  baseline?: string[];
  /** What the baseline is, in the table's "against" column (default: "bounce-bench direct"). */
  baselineName?: string;
  /** The io_uring setup flags bounce-bench asks for (ladder rows). */
  ring?: string;
  /**
   * Bounce vs direct: `bounceBench` runs both in one process, the rounds as its interleaved
   * repeats after a ramp (see `runBouncePairs`); ours is the bounced case, the other the direct.
   */
  paired?: boolean;
  /**
   * CPU per IO measured the same way for both tools, from outside, over each run's steady middle
   * (`steady-window.ts`): the process's CPU time (every thread: io_uring's SQPOLL thread and
   * workers too, which fio's own figure leaves out, as it counts its job thread alone) per IO
   * the disk's device completed, after a warm-up of `LADDER_RAMP_SECONDS` both tools make
   * (bench's `--ramp`, fio's `ramp_time`: Bun's JIT compiles the hot path then).
   */
  externalCpu?: {
    /** The path whose block device counts the IOs (null: none, the tool's IOPS stand in). */
    device: () => string | null;
    /** Bytes of one IO. */
    ioBytes: number;
  };
}

const ROOT = join(import.meta.dir, "..");
const flags = scriptOptions("bench", {
  rounds: { type: "string", default: "5" },
  seconds: { type: "string", default: "3" },
  only: { type: "string", default: "" },
  json: { type: "boolean", default: false },
});
const rounds = numberFlag("bench", "rounds", flags.rounds, 1);
const seconds = numberFlag("bench", "seconds", flags.seconds, 0.1);
const only = flags.only.split(",").filter(Boolean);
/** `--only`: a case's name, or the start of names (`ladder` runs every `ladder-...`). */
const selected = (name: string) => only.length === 0 || only.some((item) => name === item || name.startsWith(`${item}-`));
const asJson = flags.json;
const DISK_BYTES = 1 << 30;
/** Loop devices are made by root only. */
const isRoot = process.getuid?.() === 0;
const LOOP_DISK = ["--disk-kind", "loop", "--size", "128m"];
/** Warm-up before each run of a bounce-vs-direct pair. */
const PAIR_RAMP_SECONDS = 0.5;

const dir = mkdtempSync(join(tmpdir(), "bounce-bench-compare-"));
const disk = join(dir, "disk.bin");
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  process.on(signal, () => {
    removeLoopOverTmpfs();
    removeLadderMemory();
    rmSync(dir, { recursive: true, force: true });
    process.exit(code);
  });
}

const hasFio = spawnSync("fio", ["--version"]).status === 0;

function bb(options: string[]): string[] {
  // One run per invocation: this script alternates the runs itself.
  return ["bench", "--json", "--disk", disk, "--force", "--runtime", String(seconds), "--repeat", "1", ...options];
}

/** A bounce-bench run on a scratch disk of its own (made, filled and removed by the run). */
function bbScratch(options: string[]): string[] {
  return ["bench", "--json", "--runtime", String(seconds), ...options];
}

function fio(options: string[]): string[] {
  return ["--output-format=json", "--name=compare", `--filename=${disk}`, `--size=${DISK_BYTES}`, "--thread", "--time_based", `--runtime=${Math.round(seconds * 1000)}ms`, ...options];
}

/** The loop device over tmpfs (root only), made before the first case that needs it. */
const LOOP_TMPFS_BYTES = 128 * 2 ** 20;
let loopTmpfs: ScratchDevice | null = null;
function loopTmpfsDevice(): string {
  if (loopTmpfs === null) throw new Error("the loop device over tmpfs was not made");
  return loopTmpfs.path;
}
function removeLoopOverTmpfs(): void {
  loopTmpfs?.remove();
  loopTmpfs = null;
}
/**
 * The memory both tools of a ladder row do their IO into (root only): one file on a scratch
 * tmpfs, bounce-bench's guest (`--guest`) and fio's buffers (`--iomem=mmapshared:FILE`, which
 * fio maps MAP_SHARED from offset 0), so that the same physical pages back the same slots for
 * both (slot i at i x bs in both). Without it each tool's memory is its own allocation, and
 * how fragmented that happens to be changes the IO on a virtual disk (docs/performance.md).
 */
const LADDER_MEMORY_BYTES = 8 * 2 ** 20;
let ladderMemory: ScratchDevice | null = null;
function removeLadderMemory(): void {
  ladderMemory?.remove();
  ladderMemory = null;
}
const ladderMemoryWhy = isRoot ? scratchDiskUnavailable("tmpfs") : "not root: the shared memory is a file on a tmpfs of its own";
/** Each tool's memory options for a ladder row: the shared file, or each its own shared memory. */
function ladderMemoryOptions(): { ours: string[]; fio: string[] } {
  if (ladderMemory === null) return { ours: [], fio: ["--iomem=shm"] };
  // --force: a read workload stores into an existing guest, which is what the file is for.
  return { ours: ["--guest", ladderMemory.path, "--force"], fio: [`--iomem=mmapshared:${ladderMemory.path}`] };
}
const loopTmpfsWhy = isRoot ? (scratchDiskUnavailable("loop") ?? scratchDiskUnavailable("tmpfs")) : "not root: loop devices are made by root only";

/**
 * The io_uring ladder's rungs, as bounce-bench and fio name the options. fio 3.33 sets up its
 * ring with SINGLE_ISSUER | DEFER_TASKRUN (and COOP_TASKRUN) by itself unless it polls (measured
 * with strace: `fioRingSetup`), so its plain, registered-files and fixed-buffer runs are compared
 * with bounce-bench's with `--defer-taskrun`; the first rungs are bounce-bench's alone.
 */
const LADDER_RUNGS: { name: string; ours: string[]; fio: string[] | null }[] = [
  { name: "plain", ours: [], fio: null },
  { name: "regfiles", ours: ["--registerfiles"], fio: null },
  { name: "fixedbufs", ours: ["--registerfiles", "--fixedbufs"], fio: null },
  { name: "sqpoll", ours: ["--registerfiles", "--fixedbufs", "--sqthread_poll"], fio: ["--registerfiles=1", "--fixedbufs=1", "--sqthread_poll=1"] },
  { name: "defer", ours: ["--defer-taskrun"], fio: [] },
  { name: "defer+regfiles", ours: ["--registerfiles", "--defer-taskrun"], fio: ["--registerfiles=1"] },
  { name: "defer+fixedbufs", ours: ["--registerfiles", "--fixedbufs", "--defer-taskrun"], fio: ["--registerfiles=1", "--fixedbufs=1"] },
];
/**
 * The flags fio's io_uring ring was set up with for `command`, as the kernel took them (the
 * last io_uring_setup that succeeded, under strace in a short run); null without strace.
 */
function fioRingSetup(command: string[]): string | null {
  const trace = join(dir, "fio-setup.strace");
  const result = spawnSync("strace", ["-f", "-e", "trace=io_uring_setup", "-o", trace, "fio", ...withRuntime(command, 0.2)], { encoding: "utf8" });
  if (result.error !== undefined || result.status !== 0) return null;
  const taken = readFileSync(trace, "utf8")
    .split("\n")
    .filter((line) => /io_uring_setup\(.*\) = \d+$/.test(line))
    .pop();
  const flags = taken === undefined ? undefined : /flags=([^,]*)/.exec(taken)?.[1];
  if (flags === undefined) return null;
  // strace 5.x prints flags newer than it as a number: decode the ones io_uring.h names since.
  const newer: [number, string][] = [[1 << 12, "SINGLE_ISSUER"], [1 << 13, "DEFER_TASKRUN"], [1 << 14, "NO_MMAP"], [1 << 15, "REGISTERED_FD_ONLY"], [1 << 16, "NO_SQARRAY"]];
  return flags
    .split("|")
    .flatMap((token) => {
      if (!token.startsWith("0x")) return [token.replace(/^IORING_SETUP_/, "")];
      const bits = Number.parseInt(token, 16);
      const named = newer.filter(([bit]) => (bits & bit) !== 0);
      const rest = named.reduce((left, [bit]) => left & ~bit, bits);
      return [...named.map(([, name]) => name), ...(rest !== 0 ? [`0x${rest.toString(16)}`] : [])];
    })
    .join("|");
}

/** The ring setup flags bounce-bench's uring engine asks for with these options (`IoUring`'s `RingSetup`). */
function ourRingSetup(options: string[]): string {
  if (options.includes("--sqthread_poll")) return "SQPOLL";
  if (options.includes("--defer-taskrun")) return "SINGLE_ISSUER|DEFER_TASKRUN";
  return "none";
}

/**
 * The warm-up both tools make before each ladder run, outside the measuring window: long enough
 * for Bun's JIT to have compiled most of bounce-bench's IO path, which at 64 KiB it was still
 * doing up to about 1.8 s after the first IO (docs/performance.md).
 */
const LADDER_RAMP_SECONDS = 2;
const LADDER_RAMP = `${LADDER_RAMP_SECONDS}s`;
/** When each ladder run's CPU time and IOs are read (`externalCpu`). */
const LADDER_WINDOW = steadyWindow(LADDER_RAMP_SECONDS, seconds);

const LADDER_LOADS = [
  { bs: "4k", qd: 32, bytes: 4096 },
  { bs: "64k", qd: 16, bytes: 65536 },
];

/** fio as a process (its CPU time then counts the SQPOLL thread), on `target` of `bytes`. */
function fioProcess(target: string, bytes: number, options: string[]): string[] {
  return ["--output-format=json", "--name=ladder", `--filename=${target}`, `--size=${bytes}`, "--time_based", `--runtime=${Math.round(seconds * 1000)}ms`, ...options];
}

function ladder(): Comparison[] {
  const targets = [
    { name: "file", ours: () => ["--disk", disk, "--force"], fio: () => ({ target: disk, bytes: DISK_BYTES }), device: () => disk, unavailable: null as string | null },
    { name: "loop-tmpfs", ours: () => ["--disk", loopTmpfsDevice()], fio: () => ({ target: loopTmpfsDevice(), bytes: LOOP_TMPFS_BYTES }), device: () => loopTmpfsDevice(), unavailable: loopTmpfsWhy },
  ];
  const rows: Comparison[] = [];
  for (const target of targets) {
    for (const load of LADDER_LOADS) {
      for (const rung of LADDER_RUNGS) {
        const name = `ladder-${target.name}-${load.bs}-${rung.name}`;
        if (target.unavailable !== null) {
          if (selected(name)) process.stderr.write(`${name}: skipped: ${target.unavailable}\n`);
          continue;
        }
        // --nonvectored: IORING_OP_READ, as fio sends by default.
        const workload = ["--op", "randread", "--bs", load.bs, "--mem-offset", "0", "--mode", "auto", "--engine", "uring", "--qd", String(load.qd), "--ramp", LADDER_RAMP, "--nonvectored"];
        const fioOptions = rung.fio;
        rows.push({
          name,
          target: "the io_uring ladder: CPU/IO at most fio's (ratio <= 1.0), IOPS at least fio's",
          bounceBench: () => ["bench", "--json", "--runtime", String(seconds), "--repeat", "1", ...target.ours(), ...workload, ...rung.ours, ...ladderMemoryOptions().ours],
          ring: ourRingSetup(rung.ours),
          fio:
            fioOptions === null
              ? null
              : () => {
                  const { target: file, bytes } = target.fio();
                  return fioProcess(file, bytes, ["--rw=randread", `--bs=${load.bs}`, "--direct=1", "--ioengine=io_uring", `--iodepth=${load.qd}`, `--ramp_time=${LADDER_RAMP}`, ...ladderMemoryOptions().fio, ...fioOptions]);
                },
          externalCpu: { device: target.device, ioBytes: load.bytes },
        });
      }
    }
  }
  // The floor: no ring, no device.
  for (const load of LADDER_LOADS) {
    rows.push({
      name: `ladder-null-${load.bs}-plain`,
      target: "the floor (null engine, no ring): IOPS at least fio's null engine",
      bounceBench: bb(["--op", "randread", "--bs", load.bs, "--mem-offset", "0", "--mode", "auto", "--engine", "null", "--qd", String(load.qd), "--ramp", LADDER_RAMP]),
      fio: fioProcess(disk, DISK_BYTES, ["--rw=randread", `--bs=${load.bs}`, "--ioengine=null", `--iodepth=${load.qd}`, `--ramp_time=${LADDER_RAMP}`]),
      externalCpu: { device: () => null, ioBytes: load.bytes },
    });
  }
  return rows;
}

/** Registered bounce against unregistered direct, paired in one run (`--fixedbufs bounce`). */
function registeredBounce(): Comparison[] {
  const targets = [
    { name: "file", ours: () => ["--disk", disk, "--force"], unavailable: null as string | null },
    { name: "loop-tmpfs", ours: () => ["--disk", loopTmpfsDevice()], unavailable: loopTmpfsWhy },
  ];
  return targets.flatMap((target) =>
    ["4k", "16k", "64k", "1m"].flatMap((bs) => {
      const name = `regbounce-${target.name}-${bs}`;
      if (target.unavailable !== null) {
        if (selected(name)) process.stderr.write(`${name}: skipped: ${target.unavailable}\n`);
        return [];
      }
      return [
        {
          name,
          target: "bounce into a registered pool against direct IO from unregistered guest pages, same run",
          bounceBench: () => ["bench", "--json", "--runtime", String(seconds), ...target.ours(), "--op", "randread", "--bs", bs, "--mem-offset", "0", "--engine", "uring", "--qd", "8", "--fixedbufs", "bounce"],
          fio: null,
          paired: true,
        },
      ];
    }),
  );
}
const comparisons: Comparison[] = [
  // bounce-bench's sync engine is vectored (preadv), like fio's pvsync; psync (pread) is the
  // other common baseline.
  ...["4k", "64k", "1m"].flatMap((bs) =>
    ["psync", "pvsync"].map((engine) => ({
      name: `sync-${bs}${engine === "pvsync" ? "-pv" : ""}`,
      target: `direct at qd 1: CPU/IO at most fio ${engine}'s, throughput within noise`,
      bounceBench: bb(["--op", "read", "--bs", bs, "--mem-offset", "0", "--mode", "auto", "--engine", "sync", "--qd", "1"]),
      fio: fio(["--rw=read", `--bs=${bs}`, "--direct=1", `--ioengine=${engine}`, "--iodepth=1"]),
    })),
  ),
  {
    name: "uring-64k-qd16",
    target: "io_uring at qd 16, 64 KiB random reads: throughput at least fio io_uring",
    bounceBench: bb(["--op", "randread", "--bs", "64k", "--mem-offset", "0", "--mode", "auto", "--engine", "uring", "--qd", "16"]),
    fio: fio(["--rw=randread", "--bs=64k", "--direct=1", "--ioengine=io_uring", "--iodepth=16"]),
  },
  {
    name: "null-4k",
    target: "null engine, 4 KiB: at least as many IOPS as fio --ioengine=null",
    bounceBench: bb(["--op", "read", "--bs", "4k", "--mem-offset", "0", "--mode", "auto", "--engine", "null", "--qd", "1"]),
    fio: fio(["--rw=read", "--bs=4k", "--ioengine=null"]),
  },
  // What a widened read and a read-modify-write really cost: 512-byte IOs on a simulated 4 KiB
  // disk (each moves a 4 KiB block; a write reads its block first) against the same IOs direct
  // on the real 512-byte disk.
  ...["read", "write"].map((op) => ({
    name: op === "read" ? "widened-512" : "rmw-512",
    target: "the extra IO is really done: CPU and throughput against direct 512-byte IOs (both bounce-bench)",
    bounceBench: bb(["--op", op, "--bs", "512", "--mem-offset", "0", "--mode", "auto", "--engine", "sync", "--qd", "1", "--align", "4096"]),
    fio: null,
    baseline: bb(["--op", op, "--bs", "512", "--mem-offset", "0", "--mode", "auto", "--engine", "sync", "--qd", "1"]),
  })),
  // What the cross-process write locks cost (every write to a disk the user names takes one):
  // the same 4 KiB writes with --no-file-locks as the baseline, with no device and on the file.
  ...(["null", "sync"] as const).map((engine) => {
    const writes = ["--op", "write", "--bs", "4k", "--mem-offset", "0", "--mode", "auto", "--engine", engine, "--qd", "1"];
    return {
      name: `locks-4k-w${engine === "null" ? "-null" : ""}`,
      target: "what the write locks add: CPU/IO against the same writes with --no-file-locks (both bounce-bench)",
      bounceBench: bb(writes),
      fio: null,
      baseline: bb([...writes, "--no-file-locks"]),
      baselineName: "bounce-bench --no-file-locks",
    };
  }),
  // Bounce vs direct, like for like (bounce buffers on the guest's 4 KiB pages and laid out
  // physically like its buffers, the defaults): reads and writes, on the disk file, on a
  // scratch loop device (root only) and on no device; then reads with the bounce buffers on transparent
  // huge pages, unlike the guest's, which is what earlier releases measured by default.
  ...[
    { op: "read", loop: false, engine: "sync", pages: [] as string[], suffix: "" },
    { op: "write", loop: false, engine: "sync", pages: [] as string[], suffix: "-w" },
    ...(isRoot
      ? [
          { op: "read", loop: true, engine: "sync", pages: [] as string[], suffix: "-loop" },
          { op: "write", loop: true, engine: "sync", pages: [] as string[], suffix: "-w-loop" },
        ]
      : []),
    // No device at all (the null engine): bounce-bench's own bounce path, copy included.
    { op: "read", loop: false, engine: "null", pages: [] as string[], suffix: "-null" },
    { op: "write", loop: false, engine: "null", pages: [] as string[], suffix: "-w-null" },
    { op: "read", loop: false, engine: "sync", pages: ["--bounce-pages", "thp"], suffix: "-thp" },
  ].flatMap(({ op, loop, engine, pages, suffix }) =>
    ["64k", "1m"].map((bs) => ({
      name: `bounce-${bs}${suffix}`,
      target: "bounce vs direct, same run: CPU/IO above direct by at most 1.1x the copy's cost",
      bounceBench: [...bbScratch(loop ? LOOP_DISK : ["--disk", disk, "--force"]), "--op", op, "--bs", bs, "--mem-offset", "0", "--engine", engine, "--qd", "1", ...pages],
      fio: null,
      paired: true,
    })),
  ),
  ...ladder(),
  ...registeredBounce(),
];

/** A bounce-bench run's JSON document, and its peak RSS. */
function runBounceBenchJson(command: string[]): { doc: { results: Record<string, any>[] }; maxRssBytes: number } {
  const result = Bun.spawnSync([process.execPath, join(ROOT, "cli/bounce-bench.ts"), ...command]);
  if (result.exitCode !== 0) throw new Error(`bounce-bench ${command.join(" ")}: ${result.stderr.toString()}${result.stdout.toString()}`);
  return { doc: JSON.parse(result.stdout.toString()), maxRssBytes: result.resourceUsage?.maxRSS ?? 0 };
}

/** A case's figures, or (`run`) those of one of its runs, with the case's copy and kernel figures. */
function sampleOf(r: Record<string, any>, run?: number): Sample {
  const figures = run === undefined ? r : r.samples[run];
  return {
    mibPerSec: figures.mibPerSec,
    iops: figures.iops,
    cpuNsPerIo: figures.cpuNsPerIo,
    copyGiBPerSec: r.bounce.copyGiBPerSec,
    callsPerIo: r.callsPerIo,
    diskBytesPerIo: r.diskBytesPerIo,
    physicalSegments: r.physicalSegments,
  };
}

function runBounceBench(command: string[]): Sample & { maxRssBytes: number } {
  const { doc, maxRssBytes } = runBounceBenchJson(command);
  return { ...sampleOf(doc.results[0]!), maxRssBytes };
}

/**
 * Bounce against direct in one process: `--mode auto,bounce --repeat rounds`, each run after a
 * ramp of `PAIR_RAMP_SECONDS`, paired run by run. In one process both cases use the same guest
 * pages (and bounce buffers laid out like them), and the ramp keeps out the first second or so
 * of a young process, when the device path costs a 64 KiB read 5 to 20 us more, bounced more
 * than direct (docs/performance.md); fresh processes per round measured that warm-up instead.
 */
function runBouncePairs(command: string[]): { bounced: Sample[]; direct: Sample[] } {
  const { doc } = runBounceBenchJson([...command, "--mode", "auto,bounce", "--repeat", String(rounds), "--ramp", String(PAIR_RAMP_SECONDS)]);
  const [direct, bounced] = [doc.results.find((r) => r.mode === "auto")!, doc.results.find((r) => r.mode === "bounce")!];
  const runs = Array.from({ length: rounds }, (_, run) => run);
  return { bounced: runs.map((run) => sampleOf(bounced, run)), direct: runs.map((run) => sampleOf(direct, run)) };
}

/**
 * A ladder run's figures: the tool's own, but CPU per IO over the run's steady middle, measured
 * from outside (`externalCpu`); `windowIops`, the IOs per second the device counted then.
 */
async function windowRun(tool: "bounce-bench" | "fio", command: string[], external: NonNullable<Comparison["externalCpu"]>): Promise<Sample> {
  const argv = tool === "fio" ? ["fio", ...command] : [process.execPath, join(ROOT, "cli/bounce-bench.ts"), ...command];
  const device = external.device();
  const sampleFrom = (output: string) => (tool === "fio" ? fioSample(JSON.parse(output).jobs[0]) : sampleOf(JSON.parse(output).results[0]));
  const measured = await runInWindow(argv, LADDER_WINDOW, device === null ? null : deviceStatFile(device), external.ioBytes, (output) => sampleFrom(output).iops);
  return { ...sampleFrom(measured.output), cpuNsPerIo: measured.cpuNsPerIo, windowIops: measured.iops };
}

/** `command` with its run time (`--runtime S` or `--runtime=S`) set to `runtime` seconds. */
function withRuntime(command: string[], runtime: number): string[] {
  // fio takes whole seconds unless given a unit.
  return command.map((arg, i) => (arg.startsWith("--runtime=") ? `--runtime=${Math.round(runtime * 1000)}ms` : command[i - 1] === "--runtime" ? String(runtime) : arg));
}

function runFio(command: string[]): Sample {
  const result = spawnSync("fio", command, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`fio ${command.join(" ")}: ${result.stderr}`);
  return fioSample(JSON.parse(result.stdout).jobs[0]);
}

/** A fio job's figures, its CPU time its own (the job thread's: RUSAGE_THREAD). */
function fioSample(job: Record<string, any>): Sample {
  const side = job.read.io_bytes > 0 ? job.read : job.write;
  const ios = side.total_ios;
  const runtimeNs = job.job_runtime * 1e6;
  return {
    mibPerSec: side.bw_bytes / 2 ** 20,
    iops: side.iops,
    cpuNsPerIo: ios > 0 ? (((job.usr_cpu + job.sys_cpu) / 100) * runtimeNs) / ios : 0,
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

function medians(samples: Sample[]): Sample {
  return {
    mibPerSec: median(samples.map((s) => s.mibPerSec)),
    iops: median(samples.map((s) => s.iops)),
    cpuNsPerIo: median(samples.map((s) => s.cpuNsPerIo)),
    copyGiBPerSec: median(samples.map((s) => s.copyGiBPerSec ?? 0)),
    callsPerIo: median(samples.map((s) => s.callsPerIo ?? 0)),
    diskBytesPerIo: median(samples.map((s) => s.diskBytesPerIo ?? 0)),
  };
}

/**
 * What "memory bandwidth" means here, for the bounce copy: one thread copying `bs`-byte blocks
 * with Uint8Array.set (the copy bounce-bench does), GiB/s as the median of 5 passes of 256 MiB,
 * two ways: `warm`, the same block over and over (source and target in cache: the ceiling), and
 * `dram`, walking through 256 MiB (nothing in cache: streaming from and to memory).
 */
function copyBandwidth(bs: number): { warm: number; dram: number } {
  const total = 256 * 2 ** 20;
  const source = new Uint8Array(total).fill(7);
  const target = new Uint8Array(total + 4096).fill(1);
  const rate = (step: number) => {
    const passes: number[] = [];
    for (let pass = 0; pass < 5; pass++) {
      const start = Bun.nanoseconds();
      for (let at = 0; at < total; at += bs) target.set(source.subarray(at * step, at * step + bs), at * step + 512);
      passes.push(total / 2 ** 30 / ((Bun.nanoseconds() - start) / 1e9));
    }
    return median(passes);
  };
  return { warm: rate(0), dram: rate(1) };
}

const report: Record<string, unknown>[] = [];
/** Per ladder case, fio's ring setup flags as measured. */
const fioRings = new Map<string, string>();
try {
  // Runs are made with spawnSync, which keeps the event loop from turning: a signal sent to this
  // script alone (kill PID) would wait for the whole run. Each progress line gives the loop a
  // turn first, so that the handlers above clean up and exit between runs.
  const progress = async (text: string) => {
    await new Promise((resolve) => setImmediate(resolve));
    process.stderr.write(`${text}\n`);
  };
  await progress(`filling a ${DISK_BYTES >> 20} MiB disk file in ${dir} ...`);
  await createFilledDisk(disk, DISK_BYTES);
  if (loopTmpfsWhy === null && comparisons.some((comparison) => selected(comparison.name) && comparison.name.includes("-loop-tmpfs-"))) {
    await progress(`making a loop device over tmpfs (${LOOP_TMPFS_BYTES >> 20} MiB) ...`);
    loopTmpfs = await loopOverTmpfs(LOOP_TMPFS_BYTES);
  }
  if (comparisons.some((comparison) => selected(comparison.name) && comparison.ring !== undefined)) {
    if (ladderMemoryWhy === null) {
      await progress(`making the ladder's shared memory: a ${LADDER_MEMORY_BYTES >> 20} MiB file on a tmpfs of its own ...`);
      ladderMemory = await sharedMemoryFile(LADDER_MEMORY_BYTES);
    } else await progress(`the ladder: each tool's memory its own shared memory (bounce-bench's memfd, fio's SysV segment), not the same pages: ${ladderMemoryWhy}`);
  }
  if (!hasFio) await progress("fio is not installed (apt-get install fio): bounce-bench figures only");
  for (const comparison of comparisons) {
    if (!selected(comparison.name)) continue;
    const ours: Sample[] = [];
    const theirs: Sample[] = [];
    if (comparison.paired === true) {
      await progress(`${comparison.name}: ${rounds} rounds in one run`);
      const { bounced, direct } = runBouncePairs(resolve(comparison.bounceBench));
      ours.push(...bounced);
      theirs.push(...direct);
    }
    const external = comparison.externalCpu;
    if (external !== undefined) {
      const oursCommand = resolve(comparison.bounceBench);
      const fioCommand = comparison.fio !== null && hasFio ? resolve(comparison.fio) : null;
      if (fioCommand !== null && comparison.ring !== undefined) fioRings.set(comparison.name, fioRingSetup(fioCommand) ?? "not measured (strace missing)");
      for (let round = 0; round < rounds; round++) {
        await progress(`${comparison.name}: round ${round + 1}/${rounds} (CPU and IOs measured ${LADDER_WINDOW.fromSeconds.toFixed(1)} to ${LADDER_WINDOW.toSeconds.toFixed(1)} s into each run)`);
        const oursRun = async () => ours.push(await windowRun("bounce-bench", oursCommand, external));
        const fioRun = async () => {
          if (fioCommand !== null) theirs.push(await windowRun("fio", fioCommand, external));
        };
        // Each tool goes first in every other round: whatever the previous run leaves behind
        // (the device's queue, caches, the host's scheduling) falls on both alike.
        if (round % 2 === 0) {
          await oursRun();
          await fioRun();
        } else {
          await fioRun();
          await oursRun();
        }
      }
    }
    for (let round = 0; round < rounds && comparison.paired !== true && comparison.externalCpu === undefined; round++) {
      await progress(`${comparison.name}: round ${round + 1}/${rounds}`);
      ours.push(runBounceBench(resolve(comparison.bounceBench)));
      if (comparison.baseline !== undefined) theirs.push(runBounceBench(comparison.baseline));
      else if (comparison.fio !== null && hasFio) theirs.push(runFio(resolve(comparison.fio)));
    }
    const a = medians(ours);
    const b = theirs.length > 0 ? medians(theirs) : null;
    const range = (samples: Sample[], key: "mibPerSec" | "cpuNsPerIo") => [Math.min(...samples.map((x) => x[key])), Math.max(...samples.map((x) => x[key]))];
    report.push({
      name: comparison.name,
      target: comparison.target,
      spread: {
        mibPerSec: { ours: range(ours, "mibPerSec"), other: theirs.length > 0 ? range(theirs, "mibPerSec") : null },
        cpuNsPerIo: { ours: range(ours, "cpuNsPerIo"), other: theirs.length > 0 ? range(theirs, "cpuNsPerIo") : null },
      },
      against: comparison.paired === true ? "bounce-bench direct, same run" : comparison.baseline !== undefined ? (comparison.baselineName ?? "bounce-bench direct") : hasFio ? "fio" : null,
      // Bounced minus direct CPU per IO, round by round (paired comparisons).
      extraCpuNsPerIo: comparison.paired === true ? ours.map((sample, i) => sample.cpuNsPerIo - theirs[i]!.cpuNsPerIo) : null,
      // Each run's figures, in the order the rounds ran (the two tools' runs of a round adjacent).
      runs: { ours: ours.map(({ iops, cpuNsPerIo, windowIops }) => ({ iops, cpuNsPerIo, windowIops })), other: theirs.map(({ iops, cpuNsPerIo, windowIops }) => ({ iops, cpuNsPerIo, windowIops })) },
      rounds,
      seconds,
      bounceBench: a,
      other: b,
      ratio: b === null ? null : { mibPerSec: a.mibPerSec / b.mibPerSec, iops: a.iops / b.iops, cpuNsPerIo: a.cpuNsPerIo / b.cpuNsPerIo },
      // Whether ours differs from the other beyond the noise of the runs (bench's rank test).
      beyondNoise:
        theirs.length === 0
          ? null
          : {
              cpuNsPerIo: difference(theirs.map((x) => x.cpuNsPerIo), ours.map((x) => x.cpuNsPerIo)).beyondNoise,
              iops: difference(theirs.map((x) => x.iops), ours.map((x) => x.iops)).beyondNoise,
            },
      ring: comparison.ring === undefined ? null : { ours: comparison.ring, fio: fioRings.get(comparison.name) ?? null },
      memory: comparison.ring === undefined ? null : ladderMemory !== null ? "the same pages for both: a file on a tmpfs (bounce-bench --guest, fio --iomem=mmapshared:FILE)" : `each its own shared memory (bounce-bench's memfd, fio's SysV segment): ${ladderMemoryWhy}`,
      cpuMeasured:
        comparison.externalCpu !== undefined
          ? `from outside, ${LADDER_WINDOW.fromSeconds} to ${LADDER_WINDOW.toSeconds} s into each run: the process tree's CPU time (every thread) per IO its disk's device completed`
          : "each tool's own figure",
    });
  }
  // Memory: peak RSS of a short and a three times longer run of the same bounced workload.
  const rss = [1, 3].map((factor) => {
    const command = bb(["--op", "read", "--bs", "1m", "--mem-offset", "0", "--mode", "bounce", "--engine", "uring", "--qd", "8"]);
    command[command.indexOf("--runtime") + 1] = String(seconds * factor);
    return { seconds: seconds * factor, maxRssMiB: runBounceBench(command).maxRssBytes / 2 ** 20 };
  });
  report.push({ name: "peak-rss", runs: rss });
  report.push({ name: "copy-bandwidth", gibPerSec: Object.fromEntries([65536, 2 ** 20].map((bs) => [bs, copyBandwidth(bs)])) });
} finally {
  removeLoopOverTmpfs();
  removeLadderMemory();
  rmSync(dir, { recursive: true, force: true });
}

if (asJson) {
  console.log(JSON.stringify(report, null, 2));
} else {
  const fmt = (value: number | undefined, digits = 1) => (value === undefined ? "-" : value.toFixed(digits));
  console.log(`bounce-bench vs ${hasFio ? "fio" : "(no fio)"}: medians of ${rounds} alternating runs of ${seconds} s`);
  const medians: string[][] = [];
  for (const row of report) {
    if (row.name === "peak-rss" || row.name === "copy-bandwidth") continue;
    const a = row.bounceBench as Sample;
    const b = row.other as Sample | null;
    const r = row.ratio as Sample | null;
    medians.push([String(row.name), fmt(a.mibPerSec), fmt(b?.mibPerSec), fmt(r?.mibPerSec, 2), fmt(a.iops, 0), fmt(b?.iops, 0), fmt(r?.iops, 2), fmt(a.cpuNsPerIo, 0), fmt(b?.cpuNsPerIo, 0), fmt(r?.cpuNsPerIo, 2), String(row.against ?? "-")]);
  }
  console.log(
    table(
      ["case", "MiB/s ours", "MiB/s other", "ratio", "IOPS ours", "IOPS other", "ratio", "CPU/IO ns ours", "CPU/IO ns other", "ratio", "against"],
      medians,
      ["left", "right", "right", "right", "right", "right", "right", "right", "right", "right", "left"],
    ).trimEnd(),
  );
  console.log(`\nspread (min .. max of the ${rounds} runs), and what bounce-bench asked of the kernel per IO`);
  const spreads: string[][] = [];
  for (const row of report) {
    const spread = row.spread as { mibPerSec: { ours: number[]; other: number[] | null }; cpuNsPerIo: { ours: number[]; other: number[] | null } } | undefined;
    if (spread === undefined) continue;
    const a = row.bounceBench as Sample;
    const span = (pair: number[] | null, digits: number) => (pair === null ? "-" : `${fmt(pair[0], digits)} .. ${fmt(pair[1], digits)}`);
    spreads.push([String(row.name), span(spread.mibPerSec.ours, 1), span(spread.mibPerSec.other, 1), span(spread.cpuNsPerIo.ours, 0), span(spread.cpuNsPerIo.other, 0), fmt(a.callsPerIo, 2), fmt(a.diskBytesPerIo, 0)]);
  }
  console.log(
    table(["case", "MiB/s ours", "MiB/s other", "CPU/IO ns ours", "CPU/IO ns other", "calls/IO", "disk bytes/IO"], spreads, ["left", "right", "right", "right", "right", "right", "right"]).trimEnd(),
  );
  // The io_uring ladder: what each rung gains over plain (ours), and the ratios against fio
  // where fio ran with the same ring setup.
  const ladderRows = report.filter((row) => String(row.name).startsWith("ladder-"));
  if (ladderRows.length > 0) {
    console.log(
      "\nthe io_uring ladder, 4 KiB random reads at qd 32 and 64 KiB at qd 16: each rung's CPU per IO against plain, and against fio with the same ring setup " +
        `(goal: CPU ratio <= 1.00, IOPS ratio >= 1.00). Both send one buffer as IORING_OP_READ (fio's default nonvectored, bounce-bench's --nonvectored). CPU per IO is measured alike for both, from outside, over each run's steady middle: the process's CPU time, every thread (SQPOLL's too), per IO its disk's device completed`,
    );
    const lines: string[][] = [];
    for (const row of ladderRows) {
      const [, target, bs, rung] = /^ladder-(.+)-(\d+k)-([\w+]+)$/.exec(String(row.name))!;
      const plain = report.find((other) => other.name === `ladder-${target}-${bs}-plain`);
      const a = row.bounceBench as Sample;
      const b = row.other as Sample | null;
      const r = row.ratio as Sample | null;
      const ring = row.ring as { ours: string; fio: string | null } | null;
      const base = plain?.bounceBench as Sample | undefined;
      const judged = row.beyondNoise as { cpuNsPerIo: boolean; iops: boolean } | null;
      // "~": within the noise of the runs (rank test, p >= 0.05), as bench marks it.
      const noise = (beyond: boolean | undefined) => (beyond === false ? " ~" : "");
      lines.push([
        `${target} ${bs}`,
        rung!,
        ring?.ours ?? "-",
        ring?.fio ?? "-",
        fmt(a.iops, 0),
        fmt(b?.iops, 0),
        `${fmt(r?.iops, 2)}${noise(judged?.iops)}`,
        fmt(a.cpuNsPerIo, 0),
        fmt(b?.cpuNsPerIo, 0),
        `${fmt(r?.cpuNsPerIo, 2)}${noise(judged?.cpuNsPerIo)}`,
        base === undefined ? "-" : `${a.cpuNsPerIo >= base.cpuNsPerIo ? "+" : ""}${((a.cpuNsPerIo / base.cpuNsPerIo - 1) * 100).toFixed(0)}%`,
      ]);
    }
    console.log(
      table(
        ["workload", "rung", "ring ours", "ring fio (strace)", "IOPS ours", "IOPS fio", "ratio", "CPU/IO ns ours", "CPU/IO ns fio", "ratio", "CPU vs plain"],
        lines,
        ["left", "left", "left", "left", "right", "right", "right", "right", "right", "right", "right"],
      ).trimEnd(),
    );
    console.log("  ~: within the noise of the runs (a rank test of the two tools' runs gives p >= 0.05)");
    const behind = ladderRows.filter((row) => {
      const judged = row.beyondNoise as { cpuNsPerIo: boolean; iops: boolean } | null;
      const r = row.ratio as Sample | null;
      return judged !== null && r !== null && ((judged.cpuNsPerIo && r.cpuNsPerIo > 1) || (judged.iops && r.iops < 1));
    });
    console.log(
      behind.length === 0
        ? "  goal: no rung is behind fio beyond the noise"
        : `  goal NOT met, behind fio beyond the noise: ${behind.map((row) => String(row.name).replace(/^ladder-/, "")).join(", ")}`,
    );
  }
  // Bouncing into registered memory against direct IO from unregistered guest pages.
  const registered = report.filter((row) => String(row.name).startsWith("regbounce-") && row.other !== null);
  if (registered.length > 0) {
    console.log("\nbounce into a registered pool (--fixedbufs bounce) against direct IO from unregistered guest pages, uring qd 8, paired runs: CPU per IO and IOPS, median [min .. max]");
    const lines = registered.map((row) => {
      const extras = row.extraCpuNsPerIo as number[];
      const { median: extra, min, max } = spreadOf(extras);
      const a = row.bounceBench as Sample;
      const b = row.other as Sample;
      const spread = row.spread as { cpuNsPerIo: { ours: number[]; other: number[] } };
      return [
        String(row.name).replace(/^regbounce-/, ""),
        `${fmt(b.cpuNsPerIo / 1000, 2)} [${fmt(spread.cpuNsPerIo.other[0]! / 1000, 2)} .. ${fmt(spread.cpuNsPerIo.other[1]! / 1000, 2)}]`,
        `${fmt(a.cpuNsPerIo / 1000, 2)} [${fmt(spread.cpuNsPerIo.ours[0]! / 1000, 2)} .. ${fmt(spread.cpuNsPerIo.ours[1]! / 1000, 2)}]`,
        `${extra >= 0 ? "+" : ""}${fmt(extra / 1000, 2)} [${fmt(min / 1000, 2)} .. ${fmt(max / 1000, 2)}]`,
        fmt(b.iops, 0),
        fmt(a.iops, 0),
      ];
    });
    console.log(table(["disk, size", "direct us/IO", "registered bounce us/IO", "bounce - direct, paired", "IOPS direct", "IOPS bounce"], lines, ["left", "right", "right", "right", "right", "right"]).trimEnd());
  }
  // The performance goal: like for like, what bouncing adds to CPU per IO is the copy, within
  // 10% (the copy's own cost: the IO's bytes over the copy rate measured in the same runs).
  const bounceRows = report.filter((row) => /^bounce-\d+[km](-w)?(-loop|-null)?$/.test(String(row.name)) && row.other !== null);
  if (bounceRows.length > 0) {
    console.log(
      "\nlike for like, bounced minus direct CPU per IO (median of the rounds' differences, quartiles or min .. max) against the copy's own cost (bytes / copy rate); goal: at most 1.1x",
    );
    for (const row of bounceRows) {
      const bytes = String(row.name).includes("1m") ? 2 ** 20 : 65536;
      const a = row.bounceBench as Sample;
      const extras = row.extraCpuNsPerIo as number[];
      const { median: extraNs, min, max, quartiles } = spreadOf(extras);
      const [q1, q3] = quartiles ?? [min, max];
      const copyNs = (bytes / 2 ** 30 / (a.copyGiBPerSec ?? 0)) * 1e9;
      console.log(
        `  ${String(row.name).padEnd(18)} +${fmt(extraNs / 1000, 1)} us CPU per IO (${fmt(q1 / 1000, 1)} .. ${fmt(q3 / 1000, 1)}), copy ${fmt(copyNs / 1000, 1)} us: ${fmt(extraNs / copyNs, 2)}x`,
      );
    }
    console.log("  IO by IO, with the floor (the same copy next to a direct IO) split off: npm run bench:pairs");
  }
  const rssRow = report.find((row) => row.name === "peak-rss");
  if (rssRow !== undefined) {
    const runs = rssRow.runs as { seconds: number; maxRssMiB: number }[];
    console.log(`peak RSS (1 MiB bounce, uring qd 8): ${runs.map((run) => `${run.seconds} s run ${run.maxRssMiB.toFixed(0)} MiB`).join(", ")}`);
  }
  const copies = report.filter((row) => (row.bounceBench as Sample | undefined)?.copyGiBPerSec);
  const reference = report.find((row) => row.name === "copy-bandwidth")?.gibPerSec as Record<string, { warm: number; dram: number }> | undefined;
  if (copies.length > 0 && reference !== undefined) {
    console.log(`bounce copy GiB/s: ${copies.map((row) => `${row.name} ${fmt((row.bounceBench as Sample).copyGiBPerSec, 1)}`).join(", ")}`);
    console.log(
      `plain Uint8Array.set GiB/s, cache-warm / from memory: ` +
        Object.entries(reference).map(([bs, rate]) => `${Number(bs) >> 10}k ${fmt(rate.warm, 1)} / ${fmt(rate.dram, 1)}`).join(", "),
    );
  }
}
