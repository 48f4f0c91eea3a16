/**
 * SignalGuard: a terminating signal during a long command (bench, repro) becomes a stop request
 * instead of a kill, so the command can finish what is in flight, print partial results, remove
 * its scratch files and exit with the signal's code (128 + its number: 130 for SIGINT). Every
 * signal whose default is to end the process without a core dump and that a user or a session
 * sends is caught: SIGINT, SIGTERM, SIGHUP (the terminal closed), SIGUSR1, SIGUSR2; SIGKILL
 * cannot be, and what it leaves the next run reclaims (`ScratchDir`). A second signal exits at once,
 * after `onSecond` (last-chance cleanup). `using` removes the handlers.
 *
 * The handlers run on the main thread's event loop, so the work itself belongs in Workers (bench
 * jobs, repro scenarios): a main thread busy in a long synchronous stretch would see the signal
 * only when it is done.
 */
const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15 };


export class SignalGuard implements Disposable {
  #caught: string | null = null;
  readonly #handlers: [string, () => void][];

  constructor(onFirst: (signal: string) => void = () => {}, onSecond: () => void = () => {}) {
    this.#handlers = Object.keys(SIGNAL_NUMBERS).map((signal) => {
      const handler = () => {
        if (this.#caught !== null) {
          onSecond();
          process.exit(128 + SIGNAL_NUMBERS[signal]!);
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
