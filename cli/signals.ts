/**
 * SignalGuard: a terminating signal during a long command (bench, repro) becomes a stop request
 * instead of a kill, so the command can finish what is in flight, print partial results, remove
 * its scratch files and exit with the signal's code (128 + its number: 130 for SIGINT). Every
 * signal whose default is to end the process without a core dump and that a user or a session
 * sends is caught: SIGINT, SIGTERM, SIGHUP (the terminal closed), SIGUSR1, SIGUSR2; SIGKILL
 * cannot be, and what it leaves the next run reclaims (`ScratchDir`). A second signal exits at once,
 * after `onSecond` (last-chance cleanup), or, where the cleanup is not the main thread's to do,
 * waits for it; a SIGHUP after the first signal is ignored (it repeats on its own when a parent
 * dies). `using` removes the handlers.
 *
 * The handlers run on the main thread's event loop, so the work itself belongs in Workers (bench
 * jobs, repro scenarios): a main thread busy in a long synchronous stretch would see the signal
 * only when it is done.
 */
const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15 };

/** 128 + this is the exit code when the reader of our output goes away, as if SIGPIPE had killed us. */
const SIGPIPE = 13;

/** The guards of the commands running now (one at most, in the CLI). */
const active = new Set<SignalGuard>();
let outputWasClosed = false;

export class SignalGuard implements Disposable {
  #caught: string | null = null;
  readonly #handlers: [string, () => void][];
  readonly #onFirst: (signal: string) => void;

  /**
   * The reader of our output went away (EPIPE on stdout or stderr, as `bounce-bench bench |
   * head` does): a command that holds scratch state (a disk, a mount) stops as on a signal,
   * removes it and then exits 141, as SIGPIPE would have ended it; with none running, the
   * process exits 141 at once. Exiting at once from a bench used to leave its mounts behind.
   */
  static outputClosed(): void {
    if (outputWasClosed) return; // every later write fails the same way
    outputWasClosed = true;
    if (active.size === 0) process.exit(128 + SIGPIPE);
    for (const guard of active) {
      if (guard.#caught !== null) continue;
      guard.#caught = "SIGPIPE";
      guard.#onFirst("SIGPIPE");
    }
  }

  /**
   * `onSecond` runs on every later signal; then the process exits at once, unless
   * `exitOnSecond` is false (the command's cleanup runs elsewhere, in a Worker, and must finish:
   * `repro`), when the later signals only hurry the stop.
   */
  constructor(onFirst: (signal: string) => void = () => {}, onSecond: () => void = () => {}, { exitOnSecond = true }: { exitOnSecond?: boolean } = {}) {
    this.#onFirst = onFirst;
    active.add(this);
    this.#handlers = Object.keys(SIGNAL_NUMBERS).map((signal) => {
      const handler = () => {
        if (this.#caught !== null) {
          // A hang-up comes again when a parent's threads exit one by one (the parent-death
          // signal of bounce-bench.ts): it never hurries a stop already under way.
          if (signal === "SIGHUP") return;
          onSecond();
          if (exitOnSecond) process.exit(128 + SIGNAL_NUMBERS[signal]!);
          return;
        }
        this.#caught = signal;
        onFirst(signal);
      };
      process.on(signal, handler);
      return [signal, handler];
    });
  }

  /** The first signal caught, or null. */
  get caught(): string | null {
    return this.#caught;
  }

  /** 128 + the signal's number, the shell's convention for "killed by". */
  get exitCode(): number {
    return this.#caught === null ? 0 : 128 + (this.#caught === "SIGPIPE" ? SIGPIPE : SIGNAL_NUMBERS[this.#caught]!);
  }

  /** The message that closes an interrupted command's output. */
  get message(): string {
    return `bounce-bench: interrupted by ${this.#caught}: partial results above; scratch files removed\n`;
  }

  [Symbol.dispose](): void {
    active.delete(this);
    for (const [signal, handler] of this.#handlers) process.off(signal, handler);
  }
}
