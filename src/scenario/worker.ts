/**
 * Runs scenarios off the main thread, so that the main thread stays idle and answers SIGINT and
 * SIGTERM at once (a busy main thread can miss them). The main thread sets `stop[0]` to end the
 * run after the current step.
 *
 *   in:  { scenarios: Scenario[], stop: Int32Array, disk?: { kind, sector } (repro --disk-kind), resourceCheck: boolean }
 *   out: { result: ScenarioResult } per scenario, then { done: true }, or { failure: { code, message } }
 */
import { BounceBenchError } from "../base/errors";
import type { Scenario } from "./format";
import { runScenario, type RunScenarioOptions } from "./run";

declare const self: Worker;

self.onmessage = async (event: MessageEvent<{ scenarios: Scenario[]; stop: Int32Array; disk?: RunScenarioOptions["disk"]; resourceCheck: boolean }>) => {
  const { scenarios, stop, disk, resourceCheck } = event.data;
  const stopped = () => Atomics.load(stop, 0) !== 0;
  try {
    for (const scenario of scenarios) {
      if (stopped()) break;
      postMessage({ result: await runScenario(scenario, { shouldStop: stopped, disk, resourceCheck }) });
    }
    postMessage({ done: true });
  } catch (error) {
    // An errno from node:fs (EMFILE, EIO) keeps its code, so the main thread can say what it means.
    const errno = (error as NodeJS.ErrnoException | null)?.code;
    const failure =
      error instanceof BounceBenchError
        ? { code: error.code, kind: error.kind, message: error.message }
        : { code: typeof errno === "string" && /^E[A-Z0-9]+$/.test(errno) ? errno : "INTERNAL", kind: "io", message: error instanceof Error ? (error.stack ?? error.message) : String(error) };
    postMessage({ failure });
  }
};
