/**
 * `trace capture`: records the direct IO a running program (a VMM, qemu-img, fio, dd) hands the
 * kernel, with the iovecs it handed over, into a trace (`trace-format.ts`).
 *
 *   1. bpftrace runs the capture program (`capture-program.ts`) in a mount namespace of its own,
 *      where tracefs is mounted at /sys/kernel/tracing if it is not already: the mount is never
 *      seen outside and goes with the namespace when bpftrace exits, so nothing shared is touched.
 *   2. Before anything is recorded, a canary: this process reads the disk directly (pread, a
 *      two-iovec preadv and an io_uring READV, at addresses it knows) and the capture must report
 *      exactly those. A kernel whose structures the program cannot read, or a disk whose IO it
 *      does not see, stops the capture here with the reason, rather than record nothing.
 *   3. The command runs (as a child of this process, so followed from its first instruction), or
 *      the pid is followed, until it exits, the duration passes or a signal asks to stop.
 *   4. After a last canary read (every event before it has been read), bpftrace is stopped; its
 *      totals say what was seen and not captured, and the trace's end line carries them.
 *
 * Root only: loading BPF programs needs it. Reads the disk (the canary), never writes it.
 */
import { existsSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { cpus, hostname, release, version as osVersion } from "node:os";
import { join } from "node:path";
import { BounceBenchError, InvalidInputError } from "../base/errors";
import type { DiskAlignment } from "../base/alignment-rules";
import { PAGE_SIZE } from "../base/constants";
import { closeFd, IoUring, IORING_OP_READV, IovecArray, NativeRegion, O_DIRECT, O_RDONLY, preadv, statx, type FileStatus } from "../native";
import { NewTextFile, openUserFile, statusOrNull } from "../host/files";
import { mountDevice } from "../host/page-cache-trace";
import { findProgram, ScratchDir } from "../host/scratch-dir";
import { discoverAlignment } from "../disk/alignment";
import { CAPTURED_SYSCALLS, captureProgram, kernelDevice, MAX_IOVECS, MAX_RING_IOVECS, MAX_SQES, type CaptureTarget } from "./capture-program";
import { CaptureAssembler } from "./capture-lines";
import { traceHeader, traceLine, type TraceEnd, type TraceHeader, type TraceIo } from "./trace-format";

export interface CaptureOptions {
  /** Follow this running process (and what it forks from now on)... */
  pid?: number;
  /** ...or run this command and follow it. */
  command?: string[];
  /** Only IO to this file or block device; every direct descriptor without it. */
  disk?: string;
  output: string;
  force?: boolean;
  /** Stop after this many seconds (a pid is otherwise followed until it exits). */
  duration?: number;
  /** The writer's name and version, for the header. */
  tool: string;
  /** Resolves when the user asks to stop (a signal). */
  stopRequested?: Promise<void>;
  /** Where progress and the command's failure go. */
  log?: (line: string) => void;
}

export interface CaptureResult {
  output: string;
  ios: number;
  missed: Record<string, number>;
  maxInFlight: number;
  /** The command's exit code (null for --pid, or when it was killed by a signal). */
  commandExit: number | null;
  header: TraceHeader;
}

/** Why capture cannot run here, or null. */
export function captureUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "trace capture needs root (it loads BPF programs into the kernel); run it as root";
  if (findProgram("bpftrace") === null) return "trace capture needs bpftrace (Debian package bpftrace)";
  if (findProgram("unshare") === null || findProgram("mount") === null) return "trace capture needs unshare and mount (util-linux)";
  if (!readFileSync("/proc/filesystems", "utf8").includes("tracefs")) return "the kernel has no tracefs";
  return null;
}

/** What the capture program filters on, from the disk named (null: every direct descriptor). */
function targetOf(disk: string | undefined): { target: CaptureTarget; status: FileStatus | null } {
  if (disk === undefined) return { target: { kind: "any" }, status: null };
  const status = statusOrNull(disk, "--disk");
  if (status === null) throw new InvalidInputError(`--disk ${disk}: no such file`);
  if (status.type === "block-device") return { target: { kind: "block-device", device: kernelDevice(status.rdevMajor, status.rdevMinor) }, status };
  if (status.type !== "file") throw new InvalidInputError(`--disk ${disk}: is a ${status.type}, not a regular file or block device`);
  // btrfs reports a subvolume's own device in stat; the kernel's superblock has the mount's.
  const devices = [kernelDevice(status.devMajor, status.devMinor)];
  const mounted = mountDevice(realpathSync(disk));
  if (mounted !== null) {
    const [major, minor] = mounted.split(":").map(Number);
    if (major !== undefined && minor !== undefined && !devices.includes(kernelDevice(major, minor))) devices.push(kernelDevice(major, minor));
  }
  return { target: { kind: "file", inode: status.inode, devices }, status };
}

export async function capture(options: CaptureOptions): Promise<CaptureResult> {
  if ((options.pid === undefined) === (options.command === undefined)) throw new InvalidInputError("trace capture: give one of --pid PID and -- COMMAND ARGS...");
  if (options.pid !== undefined && (!Number.isSafeInteger(options.pid) || options.pid <= 0 || !existsSync(`/proc/${options.pid}`))) {
    throw new InvalidInputError(`--pid ${options.pid}: no such process`);
  }
  if (options.command !== undefined && options.command.length === 0) throw new InvalidInputError("trace capture --: no command given");
  const { target, status } = targetOf(options.disk);
  const why = captureUnavailable();
  if (why !== null) throw new BounceBenchError("TRACE_UNAVAILABLE", why);
  const alignment: DiskAlignment | null = options.disk === undefined ? null : discoverAlignment(options.disk, status!);
  const log = options.log ?? (() => {});
  using scratch = ScratchDir.make("trace");
  const canaryPath = options.disk ?? join(scratch.path, "canary");
  if (options.disk === undefined) writeFileSync(canaryPath, new Uint8Array(2 * PAGE_SIZE).fill(0x5a));

  const pids = [process.pid, ...(options.pid === undefined ? [] : [options.pid])];
  const programPath = join(scratch.path, "capture.bt");
  writeFileSync(programPath, captureProgram(pids, target));
  const header = traceHeader(options.tool, {
    kernel: { release: release(), version: osVersion() },
    host: { hostname: hostname(), cpus: cpus().length },
    disk: options.disk === undefined ? null : { path: options.disk, alignment: alignment! },
    captured: {
      by: "bpftrace: syscall tracepoints, and io_uring SQEs read at io_uring_enter",
      calls: [...CAPTURED_SYSCALLS, "io_uring_enter (READV, WRITEV, READ, WRITE, READ_FIXED, WRITE_FIXED, READV_FIXED, WRITEV_FIXED)"],
      notCaptured: [
        "IO on files opened without O_DIRECT",
        "Linux AIO (io_submit): counted in the end line, not recorded",
        "io_uring submissions made without io_uring_enter reading them (SQPOLL) or on registered files: counted, not recorded",
        `iovecs beyond ${MAX_IOVECS} a call (${MAX_RING_IOVECS} an io_uring SQE) and SQEs beyond ${MAX_SQES} an io_uring_enter: the IO is recorded with iovecsTotal`,
        "IO by processes not descended from the one followed",
      ],
      pids: options.pid === undefined ? [] : [options.pid],
      command: options.command ?? null,
    },
    synthetic: null,
  });

  // Made last: nothing that can fail stands between it and the try that removes it on failure.
  const file = NewTextFile.create(options.output, { force: options.force }, "--output");
  file.write(traceLine(header));
  const ours: TraceIo[] = [];
  let written = 0;
  let inFlightMax = 0;
  // Lines are gathered and written 64 KiB at a time: a write per IO would slow the reading of
  // bpftrace's output at high rates, and what it cannot keep up with it loses.
  let pending = "";
  const flush = () => {
    file.write(pending);
    pending = "";
  };
  const assembler = new CaptureAssembler((io) => {
    if (io.pid === process.pid) {
      ours.push(io);
      return;
    }
    pending += traceLine(io);
    if (pending.length >= 1 << 16) flush();
    written++;
  });
  let bpftrace: ReturnType<typeof spawnBpftrace>;
  try {
    bpftrace = spawnBpftrace(programPath);
  } catch (error) {
    file.abort();
    throw new BounceBenchError("TRACE_UNAVAILABLE", `bpftrace could not be started: ${(error as Error).message}`, { cause: error });
  }
  let stderr = "";
  const stderrDone = (async () => {
    for await (const chunk of bpftrace.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
  })();
  const reading = (async () => {
    let partial = ""; // a line not yet ended
    for await (const chunk of bpftrace.stdout.pipeThrough(new TextDecoderStream())) {
      partial += chunk;
      const lines = partial.split("\n");
      partial = lines.pop()!;
      for (const line of lines) assembler.feed(line);
    }
    if (partial !== "") assembler.feed(partial);
  })();
  let commandExit: number | null = null;
  try {
    const exited = bpftrace.exited.then(() => "exited" as const);
    // Loading and verifying the program takes seconds.
    if ((await until(() => assembler.started, exited, 120_000)) !== "ok") {
      throw new BounceBenchError("TRACE_UNAVAILABLE", `bpftrace did not start: ${lastError(stderr)}`);
    }
    log("capture: probes attached; checking them with canary reads");
    const canary = canaryReads(canaryPath, alignment);
    if ((await until(() => canaryProblem(canary, ours) === null, exited, 10_000)) !== "ok") {
      throw new BounceBenchError("TRACE_UNAVAILABLE", `capture cannot see direct IO on ${canaryPath}: ${canaryProblem(canary, ours)}`);
    }
    ours.length = 0;
    log(options.command === undefined ? `capture: following pid ${options.pid}` : `capture: running ${options.command.join(" ")}`);
    const stops: Promise<unknown>[] = [exited];
    if (options.stopRequested !== undefined) stops.push(options.stopRequested);
    if (options.duration !== undefined) stops.push(Bun.sleep(options.duration * 1000));
    if (options.command !== undefined) {
      let child: ReturnType<typeof Bun.spawn>;
      try {
        child = Bun.spawn(options.command, { stdin: "inherit", stdout: "inherit", stderr: "inherit" });
      } catch (error) {
        throw new InvalidInputError(`trace capture -- ${options.command[0]}: cannot run it (${(error as Error).message})`);
      }
      stops.push(child.exited.then((code) => (commandExit = child.signalCode === null ? code : null)));
      await Promise.race(stops);
      if (child.exitCode === null) child.kill("SIGTERM");
      await child.exited;
    } else {
      stops.push(processGone(options.pid!));
      await Promise.race(stops);
    }
    // Every event before this read has reached us once the read itself has; if it never
    // comes, that is said (the end line), not assumed.
    const fence = canaryReads(canaryPath, alignment, false);
    const drained = (await until(() => canaryProblem(fence, ours) === null, exited, 30_000)) === "ok";
    bpftrace.kill("SIGINT");
    await bpftrace.exited;
    await reading;
    await stderrDone;
    // bpftrace says what its buffers dropped ("Lost N events") on one stream or the other.
    for (const line of stderr.split("\n")) if (/^Lost \d+ events/.test(line.trim())) assembler.feed(line.trim());
    assembler.finish();
    inFlightMax = assembler.counts.maxInFlight;
    const missed = { ...assembler.counts.missed, ...(drained ? {} : { "drain-unconfirmed": 1 }) };
    const end: TraceEnd = { type: "end", ios: written, missed, maxInFlight: inFlightMax };
    flush();
    file.write(traceLine(end));
    file.finish();
    return { output: options.output, ios: written, missed: end.missed, maxInFlight: end.maxInFlight, commandExit, header };
  } catch (error) {
    file.abort();
    throw error;
  } finally {
    if (bpftrace.exitCode === null) {
      bpftrace.kill("SIGKILL");
      await bpftrace.exited;
    }
  }
}

/** bpftrace running `programPath` in a mount namespace of its own (see the module doc). */
function spawnBpftrace(programPath: string) {
  return Bun.spawn([findProgram("unshare")!, "--mount", "--propagation", "private", "sh", "-c", TRACEFS_THEN_EXEC, "sh", findProgram("bpftrace")!, programPath], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, BPFTRACE_PERF_RB_PAGES: "1024", BPFTRACE_MAP_KEYS_MAX: "65536", BPFTRACE_STRLEN: "64" },
  });
}

/** Runs in bpftrace's own mount namespace: tracefs where bpftrace looks, then bpftrace. */
const TRACEFS_THEN_EXEC = `grep -q ' /sys/kernel/tracing tracefs ' /proc/self/mounts || mount -t tracefs nodev /sys/kernel/tracing || exit 97
exec "$1" "$2"`;

/** Waits (polling the event loop) until `ready()`, bpftrace exits, or `ms` pass. */
async function until(ready: () => boolean, exited: Promise<"exited">, ms: number): Promise<"ok" | "exited" | "timeout"> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + ms;
  for (;;) {
    if (ready()) return "ok";
    if (gone) return ready() ? "ok" : "exited";
    if (Date.now() > deadline) return "timeout";
    await Bun.sleep(20);
  }
}

/** Resolves when `pid` has exited (gone, or a zombie its parent has not reaped yet). */
async function processGone(pid: number): Promise<void> {
  for (;;) {
    let state: string | undefined;
    try {
      // "pid (comm) S ...": the state follows the last ')' (a command name may hold one).
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    } catch {
      return;
    }
    if (state === "Z" || state === "X") return;
    await Bun.sleep(100);
  }
}

function lastError(stderr: string): string {
  const lines = stderr.split("\n").filter((line) => line.trim() !== "" && !line.includes("RLIMIT_MEMLOCK") && !line.includes("WARNING") && !/^\s/.test(line));
  return lines.at(-1) ?? "no message";
}

interface CanaryRead {
  call: string;
  offset: number;
  iovecs: [number, number][];
}

/**
 * Direct reads of the disk at addresses we know (read-only, never a write): what the capture
 * must report exactly. With `all` false, only the pread (the fence at the end).
 */
function canaryReads(path: string, alignment: DiskAlignment | null, all = true): CanaryRead[] {
  const fd = openUserFile(path, O_RDONLY | O_DIRECT, "--disk");
  const block = Math.max(alignment?.readOffsetAlign ?? 0, alignment?.offsetAlign ?? 0, 512);
  const size = statx(fd).size;
  const twoBlocks = size >= 2 * block;
  using memory = NativeRegion.anonymous(4 * Math.max(block, PAGE_SIZE), "capture canary");
  using iovecs = new IovecArray(2);
  const reads: CanaryRead[] = [];
  try {
    const one = memory.address(0);
    iovecs.push(one, block);
    preadv(fd, iovecs.address(), 1, 0);
    reads.push({ call: "preadv", offset: 0, iovecs: [[one, block]] });
    if (!all) return reads;
    if (twoBlocks) {
      const second = memory.address(2 * Math.max(block, PAGE_SIZE));
      iovecs.push(second, block);
      preadv(fd, iovecs.address(), 2, block);
      reads.push({ call: "preadv", offset: block, iovecs: [[one, block], [second, block]] });
    }
    const ring = tryRing();
    if (ring !== null) {
      // At the second block where there is one: an offset the file position (0) cannot stand for.
      const at = twoBlocks ? block : 0;
      try {
        ring.prepare(IORING_OP_READV, fd, iovecs.address(), 1, at, 0, 1);
        ring.submitAndWait(1);
        const tags = new Int32Array(1);
        const results = new Int32Array(1);
        ring.takeCompletions(tags, results, 1);
        reads.push({ call: "io_uring READV", offset: at, iovecs: [[one, block]] });
      } finally {
        ring.close();
      }
    }
  } finally {
    closeFd(fd);
  }
  return reads;
}

function tryRing(): IoUring | null {
  try {
    return new IoUring(2);
  } catch {
    return null; // io_uring disabled here: nothing of it to check
  }
}

/** Why the canary reads are not (yet) all in `seen`, or null. */
function canaryProblem(expected: readonly CanaryRead[], seen: readonly TraceIo[]): string | null {
  for (const read of expected) {
    const match = seen.find(
      (io) => io.op === "read" && io.offset === read.offset && sameKind(io, read) && JSON.stringify(io.iovecs) === JSON.stringify(read.iovecs),
    );
    if (match === undefined) {
      const calls = seen.filter((io) => sameKind(io, read));
      return `a ${read.call} at offset ${read.offset} with iovecs ${JSON.stringify(read.iovecs)} was not reported${calls.length === 0 ? "" : ` (reported: ${calls.map((io) => `${io.offset} ${JSON.stringify(io.iovecs)}`).join("; ")})`}`;
    }
    if (match.result === null || match.end === null) return `a ${read.call} was reported without its result`;
  }
  return null;
}

/** Both through io_uring, or both system calls (libc's preadv may be preadv or preadv2). */
function sameKind(io: TraceIo, read: CanaryRead): boolean {
  return (io.call ?? "").startsWith("io_uring") === read.call.startsWith("io_uring");
}
