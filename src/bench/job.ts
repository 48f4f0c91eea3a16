/**
 * One benchmark job: one thread running one case (op, block size, memory offset, mode, engine,
 * queue depth) against its own region of the disk, for a time or a number of IOs.
 *
 * Each of the `qd` in-flight slots owns guest pages (`ceil((memOffset+bs)/4096)` consecutive
 * GPNs from the job's first GPN) and a request over them at `memOffset`. The plan for that
 * request is made once: `direct` and `buffered` slots hand their locked guest iovecs to the
 * engine; `bounce` slots own a slice of the job's bounce buffers (`BounceSlots`, made once)
 * and, per IO, take the pages from the shared budget (the tracker's page accounting), copy
 * guest -> bounce before a write and bounce -> guest after a read (timed: `copyNs`), and give
 * the pages back. Nothing is allocated per IO.
 *
 * The loop issues while slots are free, then reaps. A bounce IO that cannot get its pages at
 * once reaps its own in-flight IOs first (waiting on itself would deadlock) and only queues on
 * the tracker when nothing of its own is in flight; both count as budget waits.
 *
 * `stop` (a shared Int32Array) lets the main thread end the job early (Ctrl-C): issuing stops,
 * in-flight IOs complete, and the partial result is returned.
 */
import { requestAlignment } from "../base/alignment-rules";
import { BounceBuffer, MAX_BOUNCE_BYTES } from "../bounce/bounce-buffer";
import { BounceBufferTracker } from "../bounce/bounce-tracker";
import { PAGE_SIZE } from "../base/constants";
import { Disk } from "../disk/disk";
import { createEngine, type EngineName } from "../io/engines";
import { BounceBenchError } from "../base/errors";
import { GuestMemory } from "../memory/guest-memory";
import { errnoName, IovecArray, OsError, physicalRuns, RWF_DSYNC, threadCpuNs, type Address } from "../native";
import { PagedRange } from "../memory/paged-range";
import { plan, type Decision, type IoMode } from "../io/planner";
import { RequestBuffers } from "../memory/request-buffers";
import { readDiskBytes } from "../io/verify";
import { LatencyHistogram } from "./histogram";

export type BenchOp = "read" | "write" | "randread" | "randwrite";
export const BENCH_OPS: readonly BenchOp[] = ["read", "write", "randread", "randwrite"];

export interface JobSpec {
  guestPath: string;
  diskPath: string;
  op: BenchOp;
  bs: number;
  memOffset: number;
  mode: IoMode;
  engine: EngineName;
  qd: number;
  /** This job's index in the bounce tracker (its IO thread). */
  thread: number;
  trackerShared: SharedArrayBuffer;
  /** Disk bytes `[regionStart, regionStart+regionBytes)` are this job's. */
  regionStart: number;
  regionBytes: number;
  /** First GPN of this job's guest pages. */
  firstGpn: number;
  runtimeNs: number | null;
  ios: number | null;
  alignOverride?: number;
  fua?: boolean;
  /** Ask for transparent huge pages for the bounce buffers. */
  hugePages: boolean;
  seed: number;
  /** Check every IO's bytes with an independent buffered read (tests; slow). */
  verify?: boolean;
  /** [0]: stop requested. */
  stop: Int32Array;
  /** Written with the IOs completed so far, every few thousand IOs (progress display). */
  progress?: Float64Array;
}

export interface JobResult {
  thread: number;
  decision: Decision;
  reasons: string[];
  ios: number;
  bytes: number;
  elapsedNs: number;
  cpuNs: number;
  histogram: { counts: Float64Array; count: number; maxNs: number };
  /** Budget stalls handled inside the job (its own in-flight IOs held the pages). */
  budgetStalls: number;
  budgetStallNs: number;
  /** Time spent copying between guest memory and bounce buffers (0 when nothing bounced). */
  copyNs: number;
  /** Bytes of the job's bounce buffers backed by transparent huge pages at the end. */
  bounceHugePageBytes: number;
  /**
   * Physically contiguous runs of the buffer the device sees in the first slot (the guest's,
   * or the bounce buffer), at the end; null when page frames cannot be read (not root).
   */
  physicalSegments: number | null;
  error: { code: string; message: string } | null;
}

interface Slot {
  iovecs: IovecArray;
  iovecAddress: Address;
  guestView: Uint8Array;
  bounceView: Uint8Array | null;
  startNs: number;
  offset: number;
}

export async function runJob(spec: JobSpec): Promise<JobResult> {
  const write = spec.op === "write" || spec.op === "randwrite";
  const random = spec.op === "randread" || spec.op === "randwrite";
  using memory = GuestMemory.open(spec.guestPath);
  using disk = Disk.open(spec.diskPath, { write, direct: spec.mode !== "buffered", alignOverride: spec.alignOverride });
  const tracker = BounceBufferTracker.attach(spec.trackerShared);
  const slotPages = Math.ceil((spec.memOffset + spec.bs) / PAGE_SIZE);
  const bouncePages = Math.ceil(spec.bs / PAGE_SIZE);
  const owned: { release(): void }[] = [];
  const slots: Slot[] = [];
  let bounceSlots: BounceSlots | null = null;
  let decision: Decision = "direct";
  let reasons: string[] = [];
  try {
    for (let i = 0; i < spec.qd; i++) {
      const first = spec.firstGpn + i * slotPages;
      const gpns = Array.from({ length: slotPages }, (_, page) => first + page);
      const range = new PagedRange(spec.memOffset, spec.bs, gpns);
      const decided = plan({ op: write ? "write" : "read", mode: spec.mode, at: spec.regionStart, segments: [range], alignment: disk.alignment });
      if (decided.calls.length !== 1 || decided.diskStart !== spec.regionStart) {
        throw new BounceBenchError("BENCH_CASE", "input", `bench: block size ${spec.bs} needs ${decided.decision}; use a multiple of the ${decided.blockSize}-byte block`);
      }
      decision = decided.decision;
      reasons = decided.reasons;
      const guestView = memory.view(first * PAGE_SIZE + spec.memOffset, spec.bs);
      if (spec.verify) fillPattern(guestView, spec.thread * spec.qd + i + 1); // slots write tellable data
      if (decided.bouncePages > 0) {
        if (bounceSlots === null) {
          bounceSlots = new BounceSlots(spec.bs, spec.qd, requestAlignment(disk.alignment, write ? "write" : "read"), spec.hugePages);
          owned.push(bounceSlots);
        }
        const { address, bytes } = bounceSlots.slot(i);
        const iovecs = new IovecArray(1);
        owned.push(iovecs);
        iovecs.push(address, spec.bs);
        slots.push({ iovecs, iovecAddress: iovecs.address(), guestView, bounceView: bytes, startNs: 0, offset: 0 });
      } else {
        const iovecs = new RequestBuffers(memory, range, !write).lock(!write);
        owned.push(iovecs);
        slots.push({ iovecs, iovecAddress: iovecs.address(), guestView, bounceView: null, startNs: 0, offset: 0 });
      }
    }
    const bounced = slots[0]!.bounceView !== null;
    const measured = await loop(spec, disk, tracker, slots, { write, random, bounced, bouncePages, decision, reasons });
    // Read after the run: guest pages are faulted in by the first IOs, and the kernel may
    // collapse base pages into huge ones while it runs.
    const deviceBuffer = bounced ? bounceSlots!.slot(0).address : memory.hostAddress(spec.firstGpn, spec.memOffset);
    return {
      ...measured,
      bounceHugePageBytes: bounceSlots?.hugePageBytes() ?? 0,
      physicalSegments: physicalRuns(deviceBuffer, spec.bs),
    };
  } finally {
    for (const resource of owned) resource.release();
  }
}

/**
 * The bounce buffers of a job's slots: slices of as few long-lived buffers as fit (each at most
 * `MAX_BOUNCE_BYTES`), made once, on transparent huge pages where the kernel allows unless the
 * run asks for base pages (to compare like with like). Each slice starts on a multiple of the
 * request alignment, so the kernel accepts it for direct IO.
 */
class BounceSlots {
  readonly #buffers: BounceBuffer[] = [];
  readonly #stride: number;
  readonly #slotsPerBuffer: number;

  constructor(
    readonly bs: number,
    slots: number,
    alignment: number,
    hugePages: boolean,
  ) {
    const unit = Math.max(PAGE_SIZE, alignment);
    this.#stride = Math.ceil(bs / unit) * unit;
    this.#slotsPerBuffer = Math.max(1, Math.floor(MAX_BOUNCE_BYTES / this.#stride));
    try {
      for (let first = 0; first < slots; first += this.#slotsPerBuffer) {
        const count = Math.min(this.#slotsPerBuffer, slots - first);
        this.#buffers.push(new BounceBuffer(count * this.#stride, alignment, { hugePages }));
      }
    } catch (error) {
      this.release();
      throw error;
    }
  }

  /** Slot `index`'s `bs` bytes: their address (for the iovec) and a view of them. */
  slot(index: number): { address: Address; bytes: Uint8Array } {
    const buffer = this.#buffers[Math.floor(index / this.#slotsPerBuffer)]!;
    const start = (index % this.#slotsPerBuffer) * this.#stride;
    return { address: (buffer.address() + start) as Address, bytes: buffer.bytes.subarray(start, start + this.bs) };
  }

  hugePageBytes(): number {
    return this.#buffers.reduce((sum, buffer) => sum + buffer.hugePageBytes(), 0);
  }

  release(): void {
    for (const buffer of this.#buffers) buffer.release();
  }
}

async function loop(
  spec: JobSpec,
  disk: Disk,
  tracker: BounceBufferTracker,
  slots: Slot[],
  how: { write: boolean; random: boolean; bounced: boolean; bouncePages: number; decision: Decision; reasons: string[] },
): Promise<Omit<JobResult, "bounceHugePageBytes" | "physicalSegments">> {
  const { write, random, bounced, bouncePages } = how;
  const { bs, qd, thread, stop, progress } = spec;
  const blocks = Math.floor(spec.regionBytes / bs);
  const histogram = new LatencyHistogram();
  const freeSlots = new Int32Array(qd);
  let freeCount = qd;
  for (let i = 0; i < qd; i++) freeSlots[i] = qd - 1 - i;
  const fd = disk.fd;
  const rwFlags = write && spec.fua ? RWF_DSYNC : 0;
  let inFlight = 0;
  let issued = 0;
  let completed = 0;
  let cursor = 0;
  let rng = spec.seed | 0 || 1;
  let stopIssuing = false;
  let error: { code: string; message: string } | null = null;
  let stalls = 0;
  let stallNs = 0;
  let copyNs = 0;

  const onComplete = (slotIndex: number, result: number): void => {
    const slot = slots[slotIndex]!;
    inFlight--;
    freeSlots[freeCount++] = slotIndex;
    if (result === bs) {
      let doneNs = Bun.nanoseconds();
      if (bounced) {
        if (!write) {
          // A bounced read is done when its bytes are in guest memory.
          slot.guestView.set(slot.bounceView!);
          const copiedNs = Bun.nanoseconds();
          copyNs += copiedNs - doneNs;
          doneNs = copiedNs;
        }
        tracker.releasePages(bouncePages, thread);
      }
      histogram.record(doneNs - slot.startNs);
      if (spec.verify) verifyIo(spec, slot);
      completed++;
      if (progress !== undefined && (completed & 4095) === 0) progress[thread] = completed;
      return;
    }
    histogram.record(Bun.nanoseconds() - slot.startNs);
    if (bounced) tracker.releasePages(bouncePages, thread);
    stopIssuing = true;
    if (error === null) {
      const call = write ? "pwritev" : "preadv";
      const detail = `${spec.engine} engine, ${bs} bytes at offset ${slot.offset} of ${spec.diskPath}`;
      error =
        result < 0
          ? { code: errnoName(-result), message: new OsError(-result, call, detail).message }
          : {
              code: write ? "SHORT_WRITE" : "SHORT_READ",
              message: `${call}(${detail}): ${result} of ${bs} bytes transferred${result === 0 ? ": the disk ends before this offset (was it truncated?)" : ""}`,
            };
    }
  };

  const engine = createEngine(spec.engine, qd, onComplete);
  const startNs = Bun.nanoseconds();
  const startCpu = threadCpuNs();
  const deadline = spec.runtimeNs === null ? Number.POSITIVE_INFINITY : startNs + spec.runtimeNs;
  const limit = spec.ios ?? Number.POSITIVE_INFINITY;
  try {
    for (;;) {
      while (freeCount > 0 && !stopIssuing) {
        const now = Bun.nanoseconds();
        if (issued >= limit || now >= deadline || Atomics.load(stop, 0) !== 0) {
          stopIssuing = true;
          break;
        }
        if (bounced && !tracker.tryAcquirePages(bouncePages, thread)) {
          if (inFlight > 0) {
            stalls++;
            const stalled = Bun.nanoseconds();
            engine.reap(); // our own IOs hold the pages: complete some, then try again
            stallNs += Bun.nanoseconds() - stalled;
            continue;
          }
          await tracker.acquirePages(bouncePages, thread); // other threads hold them: queue
        }
        const slotIndex = freeSlots[--freeCount]!;
        const slot = slots[slotIndex]!;
        let block: number;
        if (random) {
          rng ^= rng << 13;
          rng ^= rng >>> 17;
          rng ^= rng << 5;
          block = (rng >>> 0) % blocks;
        } else {
          block = cursor;
          cursor = cursor + 1 === blocks ? 0 : cursor + 1;
        }
        slot.offset = spec.regionStart + block * bs;
        // Latency runs from here: a wait for bounce pages and a bounced write's copy are part of
        // what the guest waits for.
        slot.startNs = now;
        if (bounced && write) {
          const copyStartNs = Bun.nanoseconds();
          slot.bounceView!.set(slot.guestView);
          copyNs += Bun.nanoseconds() - copyStartNs;
        }
        engine.submit(slotIndex, write, fd, slot.iovecAddress, 1, slot.offset, rwFlags, bs);
        inFlight++;
        issued++;
      }
      if (inFlight === 0) break;
      engine.reap();
    }
  } catch (thrown) {
    error = errorJson(thrown);
  } finally {
    engine.close();
  }
  const elapsedNs = Bun.nanoseconds() - startNs;
  if (progress !== undefined) progress[thread] = completed;
  return {
    thread,
    decision: how.decision,
    reasons: how.reasons,
    ios: completed,
    bytes: completed * bs,
    elapsedNs,
    cpuNs: threadCpuNs() - startCpu,
    histogram: { counts: histogram.counts, count: histogram.count, maxNs: histogram.maxNs },
    budgetStalls: stalls,
    budgetStallNs: stallNs,
    copyNs,
    error,
  };
}

/** Verify mode: the disk block just transferred equals the slot's guest bytes. */
function verifyIo(spec: JobSpec, slot: Slot): void {
  const disk = readDiskBytes(spec.diskPath, slot.offset, spec.bs);
  const guest = slot.guestView;
  for (let i = 0; i < disk.length; i++) {
    if (disk[i] !== guest[i]) {
      throw new BounceBenchError("MISMATCH", "check", `bench verify: disk byte ${slot.offset + i} is 0x${disk[i]!.toString(16)}, guest has 0x${guest[i]!.toString(16)}`);
    }
  }
}

function fillPattern(bytes: Uint8Array, seed: number): void {
  let x = seed * 0x9e3779b1;
  for (let i = 0; i < bytes.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x;
  }
}

export function errorJson(error: unknown): { code: string; message: string } {
  if (error instanceof BounceBenchError) return { code: error.code, message: error.message };
  return { code: "INTERNAL", message: error instanceof Error ? (error.stack ?? error.message) : String(error) };
}
