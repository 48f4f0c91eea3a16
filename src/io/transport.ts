/**
 * UringTransport: many plan executions in flight at once over one io_uring, for
 * `executePlan(..., { transport, locks })`.
 *
 * Each `transfer` takes one of the ring's `queueDepth` slots (waiting for one when all are
 * taken), submits its vectored call and resolves when the completion arrives; short transfers
 * continue like the sync transport. `drive(work)` is the loop that makes progress: it lets the
 * executions' continuations run (so they submit), then reaps completions (one io_uring_enter
 * submits everything queued and waits), until all the work has settled.
 *
 * Lifetimes: a submitted call's iovec array and buffers belong to its execution, which is
 * awaiting the call and so keeps them alive until the completion has been delivered.
 */
import type { Disk } from "../disk/disk";
import { createEngine, type Engine } from "./engines";
import { advance, shortTransfer, type Transport } from "./executor";
import { OsError, type IovecArray } from "../native";

export class UringTransport implements Transport, Disposable {
  readonly #engine: Engine;
  readonly #resolvers: (((result: number) => void) | null)[];
  readonly #freeSlots: number[];
  readonly #slotWaiters: ((slot: number) => void)[] = [];
  #inFlight = 0;

  constructor(readonly queueDepth: number) {
    this.#engine = createEngine("uring", queueDepth, (slot, result) => {
      const resolve = this.#resolvers[slot]!;
      this.#resolvers[slot] = null;
      this.#inFlight--;
      resolve(result);
    });
    this.#resolvers = new Array(queueDepth).fill(null);
    this.#freeSlots = Array.from({ length: queueDepth }, (_, i) => queueDepth - 1 - i);
  }

  async transfer(op: "read" | "write", disk: Disk, iovecs: IovecArray, first: number, count: number, offset: number, flags: number): Promise<number> {
    const end = first + count;
    let index = first;
    let position = offset;
    let calls = 0;
    while (index < end) {
      const slot = await this.#takeSlot();
      let n: number;
      try {
        n = await new Promise<number>((resolve) => {
          this.#resolvers[slot] = resolve;
          this.#engine.submit(slot, op === "write", disk.fd, iovecs.addressOf(index), end - index, position, flags, 0);
          this.#inFlight++;
        });
      } finally {
        this.#giveSlot(slot);
      }
      calls++;
      if (n < 0) throw new OsError(-n, op === "read" ? "preadv" : "pwritev", `io_uring, fd ${disk.fd}, ${end - index} iovecs at offset ${position}`);
      if (n === 0) throw shortTransfer(op, disk, position);
      position += n;
      index = advance(iovecs, index, end, n);
    }
    return calls;
  }

  /** Runs `work` to completion, pumping the ring; settles like `Promise.allSettled`. */
  async drive<T>(work: Promise<T>[]): Promise<PromiseSettledResult<T>[]> {
    let settled = false;
    const all = Promise.allSettled(work).then((results) => {
      settled = true;
      return results;
    });
    while (!settled) {
      // Let every continuation that can run submit its calls, then wait for completions.
      await new Promise((resolve) => setImmediate(resolve));
      if (this.#inFlight > 0) this.#engine.reap();
    }
    return all;
  }

  close(): void {
    this.#engine.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #takeSlot(): Promise<number> {
    const slot = this.#freeSlots.pop();
    if (slot !== undefined) return Promise.resolve(slot);
    return new Promise((resolve) => this.#slotWaiters.push(resolve));
  }

  #giveSlot(slot: number): void {
    const waiter = this.#slotWaiters.shift();
    if (waiter !== undefined) waiter(slot);
    else this.#freeSlots.push(slot);
  }
}
