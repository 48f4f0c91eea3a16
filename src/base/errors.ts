/**
 * Typed errors of bounce-bench, one class per kind of failure.
 *
 * Every error carries a stable `code` (for `--json` and scenario expectations) and a `kind`
 * that says whose fault it is, which is what the command line turns into an exit code:
 *
 *   kind     meaning                                          CLI exit
 *   input    the caller asked for something invalid;          2
 *            nothing was read or written
 *   io       the kernel refused or failed an operation        1
 *   check    a verification or expectation did not hold       1
 *
 * Messages name the operation and the byte range or value involved, e.g.
 * `guest memory: write failed at 0x4000-0x4fff: GPN 0x4 is past the end (4 pages)`.
 * The cause, when there is one, is chained with the standard `cause` option.
 */

export type ErrorKind = "input" | "io" | "check";

/**
 * Every error code bounce-bench raises, in one catalogue, with whose fault it is. Codes named
 * after an errno (`EINVAL`, `ENOENT`, `ERRNO_200`) are the kernel's and not listed: where one is
 * raised, its kind is given (a path that cannot be opened is the caller's input; a call the
 * kernel refuses is an IO failure).
 */
export const ERROR_CATALOGUE = {
  INVALID_INPUT: { kind: "input", means: "a value given is malformed or out of its domain (a size, a list, an option)" },
  INVALID_RANGE: { kind: "input", means: "a byte range does not fit what it is laid over" },
  INVALID_ALIGNMENT: { kind: "input", means: "an alignment is not a power of two" },
  OUT_OF_RANGE: { kind: "input", means: "a reader or writer was asked for more bytes than it has left" },
  GUEST_ACCESS: { kind: "input", means: "a guest page or address outside guest memory" },
  READ_ONLY: { kind: "input", means: "guest memory the request may only read was to be written" },
  BUDGET_EXCEEDED: { kind: "input", means: "a bounce buffer larger than the whole per-thread budget" },
  BAD_THREAD: { kind: "input", means: "a thread index the bounce tracker does not have" },
  RELEASED: { kind: "input", means: "native memory or a descriptor used after its release" },
  SCENARIO_FORMAT: { kind: "input", means: "a scenario file is malformed or does not fit its own sizes" },
  SLOT_BUSY: { kind: "input", means: "an executor slot was started while still running" },
  RING_FULL: { kind: "input", means: "an IO queued on an io_uring that already has as many in flight as it has room for" },
  RING_FEATURE: { kind: "input", means: "an io_uring feature asked for (SQPOLL, DEFER_TASKRUN, an opcode) that this kernel refuses" },
  BOUNCE_TOO_SMALL: { kind: "input", means: "bounce memory handed to a prepared IO is too small for its plan, or not aligned for the disk" },
  BENCH_REGION: { kind: "input", means: "a benchmark job's disk region is not made of whole blocks" },
  GUEST_BACKING_UNAVAILABLE: { kind: "input", means: "a guest memory backing this machine cannot give (THP off, no reserved huge pages)" },
  TRACE_UNAVAILABLE: { kind: "io", means: "the kernel's tracing cannot be used here (needs root and tracefs), or setting it up failed" },
  DISK_KIND_UNAVAILABLE: { kind: "input", means: "a kind of scratch disk this machine cannot make (needs root, a program, loop devices), or making it failed" },
  NO_DIRECT_IO: { kind: "io", means: "the disk's filesystem does not do direct IO" },
  SHORT_READ: { kind: "io", means: "a read stopped at the disk's end (was it truncated?)" },
  SHORT_WRITE: { kind: "io", means: "a write moved nothing (was the disk truncated?)" },
  MISMATCH: { kind: "check", means: "disk and guest bytes differ after an IO" },
  INTERRUPTED: { kind: "io", means: "a signal stopped the command before it had results to show" },
  INTERNAL: { kind: "io", means: "a bug: something failed that should not have" },
} as const satisfies Record<string, { kind: ErrorKind; means: string }>;

export type CatalogueCode = keyof typeof ERROR_CATALOGUE;
/** An errno name from the kernel (`EINVAL`), or `ERRNO_<n>` for one without a name. */
export type ErrnoCode = `E${string}`;
export type ErrorCode = CatalogueCode | ErrnoCode;

export class BounceBenchError extends Error {
  /** Whose fault it is: the catalogue's for its code, or given (errno codes). */
  readonly kind: ErrorKind;
  /** Facts a script may want besides the message (`diskChanged`), carried into `--json` errors. */
  facts: Record<string, unknown> = {};

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; kind?: ErrorKind },
  ) {
    super(message, options);
    this.name = new.target.name;
    this.kind = options?.kind ?? (ERROR_CATALOGUE as Record<string, { kind: ErrorKind }>)[code]?.kind ?? "io";
  }
}

/**
 * The errno codes of the host running out of file descriptors (this process's limit, or the
 * system's). Not bad input and not a bug, and not an outcome a scenario step can expect: the
 * command line names the limit (`cli/main.ts`).
 */
export const OUT_OF_DESCRIPTORS = ["EMFILE", "ENFILE"] as const;

/** Whether `error` (anything with a `code`, or a code) is the host out of file descriptors. */
export function isOutOfDescriptors(error: unknown): boolean {
  const code = typeof error === "string" ? error : (error as { code?: unknown } | null)?.code;
  return (OUT_OF_DESCRIPTORS as readonly unknown[]).includes(code);
}

/** A value given by the caller is malformed or out of its domain (a size, a list, an option). */
export class InvalidInputError extends BounceBenchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("INVALID_INPUT", message, options);
  }
}

/**
 * An access to guest memory outside the guest image: a GPN past its end, or a guest physical
 * address range that does not fit. `where` is the guest physical span (`0x4000-0x4fff`).
 */
export class GuestAccessError extends BounceBenchError {
  constructor(
    readonly operation: string,
    readonly where: string,
    readonly why: string,
  ) {
    super("GUEST_ACCESS", `guest memory: ${operation} failed at ${where}: ${why}`);
  }
}

/**
 * A reader or writer was asked for more bytes than it has left. Nothing was transferred.
 * (Named like the reference's `OutOfRange(remaining, requested)`.)
 */
export class OutOfRangeError extends BounceBenchError {
  constructor(
    readonly operation: string,
    readonly remaining: number,
    readonly requested: number,
  ) {
    super(
      "OUT_OF_RANGE", `${operation}: out of range: ${requested} bytes requested, ${remaining} remaining`,
    );
  }
}

/** A byte range that does not fit what it is laid over (a PagedRange or a subrange). */
export class InvalidRangeError extends BounceBenchError {
  constructor(message: string) {
    super("INVALID_RANGE", message);
  }
}

/** Guest memory that the request may only read was asked to be written. */
export class ReadOnlyError extends BounceBenchError {
  constructor(operation: string) {
    super("READ_ONLY", `${operation}: the request buffers are read-only (the request is a disk write)`);
  }
}

/** An alignment that is not a positive power of two. */
export class InvalidAlignmentError extends BounceBenchError {
  constructor(readonly alignment: number) {
    super("INVALID_ALIGNMENT", `alignment ${alignment} is not a power of two`);
  }
}

/** A bounce buffer request that the tracker can never satisfy, or names no tracked thread. */
export class BounceBudgetError extends BounceBenchError {
  constructor(code: "BUDGET_EXCEEDED" | "BAD_THREAD", message: string) {
    super(code, message);
  }
}

/** Native memory (a bounce buffer, an iovec array, a guest mapping) used after its release. */
export class ReleasedError extends BounceBenchError {
  constructor(what: string) {
    super("RELEASED", `${what}: used after release`);
  }
}

/** `0x4000-0x4fff` (inclusive end), or `0x4000` for an empty span. Exact beyond 2^53. */
export function formatSpan(start: number | bigint, len: number): string {
  const first = BigInt(start);
  if (len <= 0) return hex(first);
  return `${hex(first)}-${hex(first + BigInt(len) - 1n)}`;
}

export function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}
