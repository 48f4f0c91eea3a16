/**
 * A benchmark thread: a Bun Worker that runs the jobs the main thread posts, one at a time,
 * each with its own engine and its own slot of the bounce budget.
 *
 *   in:  { spec: JobSpec }          out: { result: JobResult } or { failure: { code, message } }
 */
import { errorJson, runJob, type JobSpec } from "./job";

declare const self: Worker;

self.onmessage = async (event: MessageEvent<{ spec: JobSpec }>) => {
  try {
    const result = await runJob(event.data.spec);
    postMessage({ result });
  } catch (error) {
    postMessage({ failure: errorJson(error) });
  }
};
