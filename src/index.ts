/**
 * bounce-bench's library: guest memory over a mapped guest image, request buffers laid over
 * guest pages, their alignment, and the bounce buffers (with a shared page budget) used when
 * the kernel's direct-IO rules would reject them; the planner that decides, and the one
 * executor that carries every plan out (`executePlan`, `IoQueue`, `Executor`). The bench and
 * scenario runners are exported for scripts; nothing below them depends on them.
 *
 *   import { GuestMemory, OwnedRequestBuffers } from "bounce-bench";
 *   using memory = GuestMemory.create("/tmp/guest.img", 1 << 20);
 *   const request = OwnedRequestBuffers.linear(4000, 200, true).buffer(memory);
 *   request.isAligned(512); // false: memory offset 4000 is not a multiple of 512
 */
export { BounceBuffer, MAX_BOUNCE_BYTES } from "./bounce/bounce-buffer";
export { BounceBufferTracker, TrackedBounceBuffer, type BounceStats } from "./bounce/bounce-tracker";
export { DEFAULT_BOUNCE_PAGES_PER_THREAD, IOV_MAX, PAGE_SIZE } from "./base/constants";
export {
  BounceBenchError,
  BounceBudgetError,
  GuestAccessError,
  InvalidAlignmentError,
  InvalidInputError,
  InvalidRangeError,
  OutOfRangeError,
  ReadOnlyError,
  ReleasedError,
  type ErrorKind,
} from "./base/errors";
export { createSparseFile, type CreateFileOptions } from "./host/files";
export { GuestMemory } from "./memory/guest-memory";
export { IovecArray, OsError, errnoName } from "./native";
export { PagedRange, type PageRun } from "./memory/paged-range";
export { PagedRangeReader, PagedRangeWriter } from "./memory/paged-range-io";
export { OwnedRequestBuffers, RequestBuffers } from "./memory/request-buffers";
export {
  blockSize,
  checkAlignment,
  DEFAULT_ALIGNMENT,
  isPowerOfTwo,
  memoryAlignmentReasons,
  overrideAlignment,
  requestAlignment,
  type AlignmentSource,
  type DiskAlignment,
} from "./base/alignment-rules";
export { discoverAlignment, probeAlignment } from "./disk/alignment";
export { Disk, type KernelChecksByMethod, type OpenDiskOptions } from "./disk/disk";
export type { SubmissionMethod } from "./disk/direct-io-probe";
export { executePlan, Executor, IoQueue, type ExecuteOptions, type IoResult, type SettledCallback } from "./io/executor";
export { PreparedIo, type BounceArea, type PrepareOptions, type RunOptions } from "./io/prepared-io";
export { RangeLocks } from "./io/range-locks";
export { plan, IO_MODES, IO_OPS, type Decision, type IoMode, type IoOp, type Plan, type PlanInput } from "./io/planner";
export { ioJson, planJson } from "./io/json-documents";
export { parseGpnList, parseSegment, parseSize, type SegmentSpec } from "./base/value-parsers";
export { compareDiskWithGuest, guestBytes, MismatchError, readDiskBytes, type Mismatch } from "./io/verify";
export { patternBytes, PATTERNS, type PatternName } from "./base/patterns";
export { parseScenario, parseScenarioText, ScenarioFormatError, type Scenario, type Step } from "./scenario/format";
export { runScenario, runScenarioFile, type ScenarioResult, type StepResult } from "./scenario/run";
export { LatencyHistogram } from "./bench/histogram";
export { runBench } from "./bench/runner";
export { DEFAULT_BENCH, type BenchOptions } from "./bench/bench-options";
export type { BenchReport, BenchCaseResult } from "./bench/bench-results";
export {
  createEngine,
  engineCapabilities,
  ENGINE_NAMES,
  vectoredFixedBuffers,
  type Engine,
  type EngineCapabilities,
  type EngineName,
  type MemoryRegion,
  type RegisteredMemory,
  type UringOptions,
} from "./io/engines";
