#!/usr/bin/env bun
/**
 * The `bounce-bench` executable: runs the CLI on this process's argv and exits with its code.
 *
 * The CLI is imported here, not above, so that a Bun that cannot start `bun:ffi` (its JIT finds
 * no room under a virtual memory limit, `ulimit -v`) is one line naming the limit, not a stack.
 */
import { readFileSync } from "node:fs";
import { SignalGuard } from "./signals";

const EXIT_FAILED = 1;

let cli: typeof import("./main");
let native: typeof import("../src/native");
try {
  cli = await import("./main");
  native = await import("../src/native");
} catch (error) {
  process.stderr.write(`bounce-bench: ${startupFailure(error)}\n`);
  process.exit(EXIT_FAILED);
}

/**
 * Started by the npm launcher (`bin/bounce-bench.cjs`): end with it. A SIGKILLed launcher cannot
 * pass its signal on, so the kernel sends this process a SIGHUP when its parent exits, as when a
 * terminal hangs up: a run stops and removes what it made. The kernel sends it again each time
 * this process passes to another of the dying launcher's threads, so a repeated SIGHUP counts
 * once (`SignalGuard`). A launcher already gone is the same request.
 */
const SIGHUP = 1;
const launcher = process.env.BOUNCE_BENCH_LAUNCHER_PID;
if (launcher !== undefined && /^\d+$/.test(launcher)) {
  native.setParentDeathSignal(SIGHUP);
  if (process.ppid !== Number(launcher)) process.exit(128 + SIGHUP);
}

/**
 * The reader of our output went away (`bounce-bench plan ... | head`): stop quietly, as a
 * SIGPIPE would, but only after a running command has removed what it made (`SignalGuard`).
 */
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") return SignalGuard.outputClosed();
    throw error;
  });
}

process.exitCode = await cli.main(process.argv.slice(2));

/** Why the CLI could not load, in one line. */
function startupFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (!message.includes("requires the JIT")) return `internal error while starting: ${message} (this is a bug)`;
  const limit = /^Max address space\s+(\S+)/m.exec(readLimits())?.[1];
  const under = limit === undefined || limit === "unlimited" ? "" : ` under this process's limit of ${Math.round(Number(limit) / 1024)} KiB (ulimit -v)`;
  return `cannot start: Bun's JIT, which bun:ffi needs, found no room for its code${under}; raise the limit (ulimit -v unlimited)`;
}

function readLimits(): string {
  try {
    return readFileSync("/proc/self/limits", "utf8");
  } catch {
    return "";
  }
}
