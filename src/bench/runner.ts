/**
 * The benchmark: the product of the listed ops, block sizes, memory offsets and modes, each
 * case run by `threads` Bun Workers (one job each, own engine, own budget slot), measured and
 * summed into one result per run; each case runs `repeat` times, interleaved with the other
 * cases (round 1 of every case, then round 2, ...) so that a disk's drift hits all alike, and its
 * result is the median of its runs with their spread.
 *
 * CPU per IO is the process's CPU time (user and system, every thread: the IO Workers, io_uring's
 * kernel workers, and the main thread waiting for them) over the measured interval, divided by
 * the IOs completed; the IO threads' own share is kept apart (`threadCpuNsPerIo`).
 *
 * Measurement returns plain data (`BenchReport`); printing is the command line's business.
 * Each report starts with where it ran: kernel, CPU, filesystem, alignment and its source.
 *
 * A case that fails keeps what it measured and carries its error. A forced `direct` case that
 * the kernel refuses with EINVAL is a result (that is what the mode is for) and the sweep goes
 * on; any other error ends the sweep. Setting `stop[0]` (Ctrl-C) ends the current case early,
 * with its partial result, and skips the rest.
 */
import { BounceBufferTracker } from "../bounce/bounce-tracker";
import { PAGE_SIZE } from "../base/constants";
import { InvalidInputError } from "../base/errors";
import { formatBytes } from "../base/value-parsers";
import { PageCacheTrace } from "../host/page-cache-trace";
import { PageCacheWatch, type PageCacheUse } from "../io/page-cache-watch";
import { checkedBenchOptions, formatShape, type BenchOptions } from "./bench-options";
import { summarizeCase, type BenchCaseResult, type BenchReport } from "./bench-results";
import { measureCopyRates } from "./copy-rates";
import { bounceOnHugePages } from "./guest-backing";
import { LatencyHistogram } from "./histogram";
import { describeHost } from "./host-info";
import { checkGuestRegistrable, errorJson, shapePages, threadRegionBytes, type JobResult, type JobSpec } from "./job";
import { BenchWorkspace } from "./workspace";

const PROGRESS_INTERVAL_MS = 200;
const WORKER_URL = new URL("./worker.ts", import.meta.url);

export async function runBench(given: BenchOptions): Promise<BenchReport> {
  const options = checkedBenchOptions(given);
  const stop = options.stop ?? new Int32Array(new SharedArrayBuffer(4));
  const slotPages =
    options.shape === undefined
      ? Math.max(...options.bs.flatMap((bs) => options.memOffsets.map((offset) => Math.ceil((offset + bs) / PAGE_SIZE))))
      : shapePages(options.shape);
  const guestPagesPerThread = slotPages * options.qd;
  const workspace = await BenchWorkspace.prepare({
    guestPath: options.guestPath,
    diskPath: options.diskPath,
    diskSize: options.size,
    guestBytes: guestPagesPerThread * options.threads * PAGE_SIZE,
    writesDisk: options.ops.some((op) => op.endsWith("write")),
    writesGuest: options.ops.some((op) => op.endsWith("read")),
    force: options.force ?? false,
    overwriteDevice: options.overwriteDevice,
    stop,
    onScratch: options.onScratch,
    alignOverride: options.alignOverride,
    memAlignOverride: options.memAlignOverride,
    diskKind: options.diskKind,
    sector: options.sector,
    needsDirectIo: options.modes.some((mode) => mode !== "buffered"),
    guestBacking: options.guestBacking,
    resourceCheck: options.resourceCheck,
  });
  try {
    // Asked of the kernel before anything is printed or run.
    if (options.uring?.fixedBuffers && options.uring.registeredMemory !== "bounce") checkGuestRegistrable(workspace.guest);
  } catch (error) {
    workspace.cleanup();
    throw error;
  }
  options.onWorkspace?.(workspace);
  // The runner owns teardown: what a caller must run to leave nothing behind, if it cannot wait
  // for this function's own cleanup (a second signal), it is handed here.
  options.onScratch?.(() => workspace.cleanup());
  const workers: Worker[] = [];
  // The disk was opened once, by the workspace; every job's Worker uses this descriptor (Disk.adopt).
  const disk = workspace.disk;
  try {
    const mayBounce = options.modes.some((mode) => mode === "auto" || mode === "bounce");
    const host = { ...describeHost(workspace, options.bouncePages, options.fileLocks), copyRates: mayBounce ? measureCopyRates() : null };
    const regionBytes = threadRegionBytes(workspace.diskSize, options.threads, host.planAlignment);
    const largest = Math.max(...options.bs);
    if (regionBytes < largest) {
      throw new InvalidInputError(`the disk (${workspace.diskSize} bytes) is too small for ${options.threads} threads of ${largest}-byte IOs`);
    }
    for (let i = 0; i < options.threads; i++) workers.push(new Worker(WORKER_URL));
    const cases = options.ops.flatMap((op) =>
      options.bs.flatMap((bs) => options.memOffsets.flatMap((memOffset) => options.modes.map((mode) => ({ op, bs, memOffset, mode })))),
    );
    const repeat = options.repeat ?? 1;
    const runs: JobResult[][][] = cases.map(() => []);
    // Whether each case's "direct" IO really bypassed the page cache: the kernel's tracepoints
    // when root can trace the disk file, cachestat otherwise; watched over its first run.
    using trace = disk.type === "file" && options.verify !== true && options.modes.some((mode) => mode !== "buffered") ? PageCacheTrace.tryStart(disk.fd) : null;
    if (trace !== null) options.onScratch?.(() => trace.close());
    const cacheUse: PageCacheUse[] = [];
    const results: BenchCaseResult[] = [];
    const done = cases.map(() => false);
    const summarized = (index: number) => {
      const result = { ...summarizeCase(cases[index]!, options, runs[index]!), pageCache: cacheUse[index]! };
      done[index] = true;
      results.push(result);
      options.onCase?.(result);
    };
    const progress = new Float64Array(new SharedArrayBuffer(8 * options.threads));
    let ended = false;
    for (let round = 0; round < repeat && !ended; round++) {
      for (const [index, item] of cases.entries()) {
        if (Atomics.load(stop, 0) !== 0) {
          ended = true;
          break;
        }
        const label = `${item.op} ${options.shape === undefined ? `${formatBytes(item.bs)} +${item.memOffset}` : `--seg ${formatShape(options.shape)}`} ${item.mode}`;
        const tracker = new BounceBufferTracker(options.budget, options.threads);
        const run = round * cases.length + index;
        const status = { run, runs: repeat * cases.length, label, bs: item.bs };
        progress.fill(0);
        options.onProgress?.({ ...status, ios: 0 });
        const timer = setInterval(() => options.onProgress?.({ ...status, ios: progress.reduce((a, b) => a + b, 0) }), PROGRESS_INTERVAL_MS);
        let jobs: JobResult[];
        try {
          disk.setDirect(item.mode !== "buffered");
        } catch (error) {
          jobs = workers.map((_, thread) => failedJob(thread, errorJson(error)));
        }
        const shared = disk.shared();
        // --verify reads the disk back through the page cache itself: then nothing can tell.
        const cacheWatch =
          round === 0 && item.mode !== "buffered" && options.verify !== true ? new PageCacheWatch(disk, item.op.endsWith("read") ? "read" : "write", 0, workspace.diskSize, trace) : null;
        try {
          jobs ??= await Promise.all(
            workers.map((worker, thread) =>
              runInWorker(worker, {
                guest: workspace.guest,
                diskPath: workspace.diskPath,
                disk: shared,
                op: item.op,
                bs: item.bs,
                memOffset: item.memOffset,
                shape: options.shape,
                mode: item.mode,
                rules: options.rules ?? "kernel",
                engine: options.engine,
                uring: options.uring,
                qd: options.qd,
                thread,
                trackerShared: tracker.shared,
                regionStart: thread * regionBytes,
                regionBytes,
                firstGpn: thread * guestPagesPerThread,
                runtimeNs: options.runtimeSeconds === null ? null : options.runtimeSeconds * 1e9,
                rampNs: (options.rampSeconds ?? 0) * 1e9,
                ios: options.ios === null ? null : Math.ceil(options.ios / options.threads),
                fua: options.fua,
                fileLocks: host.fileLocks.on,
                hugePages: bounceOnHugePages(workspace.guestBacking, options.bouncePages ?? "same"),
                bounceLayout: options.bounceLayout ?? "matched",
                copy: options.copy,
                seed: 0x9e3779b1 ^ (thread * 7919 + run),
                verify: options.verify,
                stop,
                progress,
              }),
            ),
          );
        } finally {
          clearInterval(timer);
        }
        if (round === 0) {
          cacheUse[index] =
            cacheWatch?.finish() ??
            (item.mode === "buffered"
              ? { used: true, traced: null, evidence: "--mode buffered: through the page cache by design" }
              : { used: null, traced: null, evidence: "not watched: --verify reads the disk back through the page cache itself" });
        }
        addBudgetTotals(jobs, tracker);
        runs[index]!.push(jobs);
        const failed = jobs.find((job) => job.error !== null)?.error ?? null;
        // A forced direct case the kernel refuses is a finding; any other error, or a stop,
        // ends the sweep.
        if ((failed !== null && !(failed.code === "EINVAL" && item.mode === "direct")) || Atomics.load(stop, 0) !== 0) ended = true;
        if (round === repeat - 1) summarized(index);
        if (ended) break;
      }
    }
    // A sweep that ended early reports every case that ran at least once, with the runs it had.
    for (const index of cases.keys()) if (runs[index]!.length > 0 && !done[index]) summarized(index);
    // Read after the runs: the kernel may collapse base pages into huge ones while they run.
    return { host: { ...host, guestHugePageBytes: workspace.guestHugePageBytes() }, rules: options.rules ?? "kernel", results, interrupted: Atomics.load(stop, 0) !== 0 };
  } finally {
    for (const worker of workers) worker.terminate();
    workspace.cleanup();
  }
}

function runInWorker(worker: Worker, spec: JobSpec): Promise<JobResult> {
  return new Promise((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<{ result?: JobResult; failure?: { code: string; message: string } }>) => {
      if (event.data.result !== undefined) resolve(event.data.result);
      else resolve(failedJob(spec.thread, event.data.failure!));
    };
    worker.onerror = (event) => reject(new Error(`bench worker failed: ${event.message}`));
    worker.postMessage({ spec });
  });
}

function failedJob(thread: number, error: { code: string; message: string }): JobResult {
  return {
    thread,
    decision: "direct",
    reasons: [],
    ios: 0,
    bytes: 0,
    elapsedNs: 0,
    cpuNs: 0,
    processCpuStartNs: 0,
    processCpuEndNs: 0,
    histogram: new LatencyHistogram(new Float64Array(0)).data(),
    bounceAcquired: 0,
    bouncePeakPages: 0,
    budgetStalls: 0,
    budgetStallNs: 0,
    copyNs: 0,
    copiedBytes: 0,
    kernelCalls: 0,
    fixedCalls: 0,
    unfixedCalls: 0,
    nonvectoredCalls: 0,
    vectoredCalls: 0,
    registeredRing: null,
    diskBytes: 0,
    settled: 0,
    bounceHugePageBytes: 0,
    bounceArenaBytes: 0,
    slowCopyBytes: 0,
    bounceShift: 0,
    physicalSegments: null,
    guestSegments: null,
    bounceLayoutMatched: null,
    error,
  };
}

/**
 * The budget's use in a run, counted by the tracker shared by its jobs, added into the first
 * job (so that a run is its jobs alone, and runs add up).
 */
function addBudgetTotals(jobs: JobResult[], tracker: BounceBufferTracker): void {
  const stats = tracker.totals();
  const first = jobs[0]!;
  first.budgetStalls += stats.waits;
  first.budgetStallNs += stats.waitNs;
  first.bounceAcquired = stats.acquired;
  first.bouncePeakPages = stats.peakPages;
}
