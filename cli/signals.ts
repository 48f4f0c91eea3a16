/**
 * SignalGuard: a terminating signal during a long command (bench, repro) becomes a stop request
 * instead of a kill, so the command can finish what is in flight, print partial results, remove
 * its scratch files and exit with the signal's code (128 + its number: 130 for SIGINT). Every
 * signal whose default is to end the process without a core dump and that a user or a session
 * sends is caught: SIGINT, SIGTERM, SIGHUP (the terminal closed), SIGUSR1, SIGUSR2; SIGKILL
 * cannot be, and what it leaves the next run reclaims (`ScratchDir`). A second signal exits at once,
 * after `onSecond` (last-chance cleanup), or, where the cleanup is not the main thread's to do,
 * waits for it. `using` removes the handlers.
 *
 * The handlers run on the main thread's event loop, so the work itself belongs in Workers (bench
 * jobs, repro scenarios): a main thread busy in a long synchronous stretch would see the signal
 * only when it is done.
 */
const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15 };

export class SignalGuard implements Disposable {
  #caught: string | null = null;
  readonly #handlers: [string, () => void][];

  /**
   * `onSecond` runs on every later signal; then the process exits at once, unless
   * `exitOnSecond` is false (the command's cleanup runs elsewhere, in a Worker, and must finish:
   * `repro`), when the later signals only hurry the stop.
   */
  constructor(onFirst: (signal: string) => void = () => {}, onSecond: () => void = () => {}, { exitOnSecond = true }: { exitOnSecond?: boolean } = {}) {
    this.#handlers = Object.keys(SIGNAL_NUMBERS).map((signal) => {
      const handler = () => {
        if (this.#caught !== null) {
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
    return this.#caught === null ? 0 : 128 + SIGNAL_NUMBERS[this.#caught]!;
  }

  /** The message that closes an interrupted command's output. */
  get message(): string {
    return `bounce-bench: interrupted by ${this.#caught}: partial results above; scratch files removed\n`;
  }

  [Symbol.dispose](): void {
    for (const [signal, handler] of this.#handlers) process.off(signal, handler);
  }
}
