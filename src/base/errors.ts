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

export class BounceBenchError extends Error {
  constructor(
    readonly code: string,
    readonly kind: ErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A value given by the caller is malformed or out of its domain (a size, a list, an option). */
export class InvalidInputError extends BounceBenchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("INVALID_INPUT", "input", message, options);
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
    super("GUEST_ACCESS", "input", `guest memory: ${operation} failed at ${where}: ${why}`);
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
      "OUT_OF_RANGE",
      "input",
      `${operation}: out of range: ${requested} bytes requested, ${remaining} remaining`,
    );
  }
}

/** A byte range that does not fit what it is laid over (a PagedRange or a subrange). */
export class InvalidRangeError extends BounceBenchError {
  constructor(message: string) {
    super("INVALID_RANGE", "input", message);
  }
}

/** Guest memory that the request may only read was asked to be written. */
export class ReadOnlyError extends BounceBenchError {
  constructor(operation: string) {
    super("READ_ONLY", "input", `${operation}: the request buffers are read-only (the request is a disk write)`);
  }
}

/** An alignment that is not a positive power of two. */
export class InvalidAlignmentError extends BounceBenchError {
  constructor(readonly alignment: number) {
    super("INVALID_ALIGNMENT", "input", `alignment ${alignment} is not a power of two`);
  }
}

/** A bounce buffer request that the tracker can never satisfy, or names no tracked thread. */
export class BounceBudgetError extends BounceBenchError {
  constructor(code: "BUDGET_EXCEEDED" | "BAD_THREAD", message: string) {
    super(code, "input", message);
  }
}

/** Native memory (a bounce buffer, an iovec array, a guest mapping) used after its release. */
export class ReleasedError extends BounceBenchError {
  constructor(what: string) {
    super("RELEASED", "input", `${what}: used after release`);
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
