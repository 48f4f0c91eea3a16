/**
 * Turns the capture program's lines (`capture-program.ts`) into trace IOs. A call's E (or U)
 * line and its V lines come in order, from one CPU; its X (or C) line may come from another CPU
 * and so before them. An IO is complete when its iovecs are in and its result is known; it is
 * handed on then, so IOs leave in the order they completed.
 */
import { errnoName } from "../native";
import { MAX_IOVECS, MAX_RING_IOVECS, RING_OPCODES } from "./capture-program";
import type { TraceIo } from "./trace-format";

interface Open {
  io: TraceIo;
  /** Iovecs still to come. */
  expect: number;
  /** The start in the tracer's clock, for the X or C line that ends it. */
  key: string;
  /** Result and end (tracer clock) when its X or C line came first. */
  done: { result: number; end: number } | null;
}

/** What a capture saw, beyond the IOs. */
export interface CaptureCounts {
  missed: Record<string, number>;
  /** Read and write SQEs the program decoded, and that io_uring submitted (counted apart). */
  ringDecoded: number;
  ringSubmitted: number;
  maxInFlight: number;
}

export class CaptureAssembler {
  /** The tracer's clock at the B line: trace times count from it. */
  #zero: number | null = null;
  readonly #open = new Map<string, Open>();
  /** The IO each thread's V lines belong to (the last E or U line of that thread). */
  readonly #lastOf = new Map<number, Open>();
  readonly #early = new Map<string, { result: number; end: number }>();
  readonly #emit: (io: TraceIo) => void;
  readonly counts: CaptureCounts = { missed: {}, ringDecoded: 0, ringSubmitted: 0, maxInFlight: 0 };

  constructor(emit: (io: TraceIo) => void) {
    this.#emit = emit;
  }

  get started(): boolean {
    return this.#zero !== null;
  }

  /** Takes one line of the program's output; lines it does not know are ignored (bpftrace's own). */
  feed(line: string): void {
    const f = line.split(" ");
    switch (f[0]) {
      case "B":
        this.#zero = Number(f[1]);
        return;
      case "E": // E pid tid t op offset iovecs call
        this.#start(`${f[2]}:${f[3]}`, Number(f[1]), Number(f[2]), Number(f[3]), f[4]!, Number(f[5]), Number(f[6]), f[7]!, MAX_IOVECS);
        return;
      case "U": {
        // U pid tid t op offset iovecs opcode ring user_data
        const opcode = RING_OPCODES[Number(f[7])];
        this.#start(`${f[8]}:${f[9]}:${f[3]}`, Number(f[1]), Number(f[2]), Number(f[3]), f[4]!, Number(f[5]), Number(f[6]), `io_uring ${opcode?.name ?? f[7]}`, opcode?.vectored ? MAX_RING_IOVECS : 1);
        return;
      }
      case "V": {
        // V tid index address length
        const open = this.#lastOf.get(Number(f[1]));
        if (open === undefined || open.expect === 0) return;
        open.io.iovecs.push([Number(f[3]), Number(f[4])]);
        open.expect--;
        this.#maybeDone(open);
        return;
      }
      case "X": // X tid t result end
        this.#end(`${f[1]}:${f[2]}`, Number(f[3]), Number(f[4]));
        return;
      case "C": // C ring user_data t result end
        this.#end(`${f[1]}:${f[2]}:${f[3]}`, Number(f[4]), Number(f[5]));
        return;
      case "M": // M what pid count
        this.#miss(f[1]!, Number(f[3]));
        return;
      case "@decoded:":
        this.counts.ringDecoded = Number(f[1]);
        return;
      case "@submitted:":
        this.counts.ringSubmitted = Number(f[1]);
        return;
      case "Lost": // bpftrace: "Lost N events"
        this.#miss("lost-events", Number(f[1]));
        return;
    }
  }

  /** Hands on what never completed (result null) and settles the counts. */
  finish(): void {
    for (const open of this.#open.values()) {
      open.io.end = null;
      open.io.result = null;
      this.#deliver(open);
    }
    this.#open.clear();
    if (this.counts.ringSubmitted > this.counts.ringDecoded) {
      // Submitted without an io_uring_enter whose SQEs were read: SQPOLL.
      this.#miss("io_uring-submissions-not-read", this.counts.ringSubmitted - this.counts.ringDecoded);
    }
  }

  #miss(what: string, count: number): void {
    if (!Number.isFinite(count) || count <= 0) return;
    this.counts.missed[what] = (this.counts.missed[what] ?? 0) + count;
  }

  #start(key: string, pid: number, tid: number, t: number, op: string, offset: number, iovecs: number, call: string, max: number): void {
    const shown = Math.min(iovecs, max);
    const io: TraceIo = { type: "io", t: this.#time(t), end: null, op: op === "w" ? "write" : "read", offset, iovecs: [], result: null, pid, tid, call };
    if (iovecs > shown) io.iovecsTotal = iovecs;
    const open: Open = { io, expect: shown, key, done: this.#early.get(key) ?? null };
    this.#early.delete(key);
    this.#open.set(key, open);
    this.#lastOf.set(tid, open);
    this.counts.maxInFlight = Math.max(this.counts.maxInFlight, this.#open.size);
    this.#maybeDone(open);
  }

  #end(key: string, result: number, end: number): void {
    const open = this.#open.get(key);
    if (open === undefined) {
      this.#early.set(key, { result, end });
      return;
    }
    open.done = { result, end };
    this.#maybeDone(open);
  }

  #maybeDone(open: Open): void {
    if (open.expect > 0 || open.done === null) return;
    open.io.end = this.#time(open.done.end);
    if (open.done.result >= 0) open.io.result = open.done.result;
    else open.io.error = errnoName(-open.done.result);
    this.#open.delete(open.key);
    if (this.#lastOf.get(open.io.tid!) === open) this.#lastOf.delete(open.io.tid!);
    this.#deliver(open);
  }

  #deliver(open: Open): void {
    if (open.io.iovecs.length === 0) return; // an E line whose V lines were lost: counted by bpftrace
    this.#emit(open.io);
  }

  #time(ns: number): number {
    return Math.max(0, ns - (this.#zero ?? ns));
  }
}
