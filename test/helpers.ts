/**
 * Shared test helpers: scratch directories that are always removed, file byte access through
 * plain node:fs (independent of the library under test), and a reference model of a PagedRange.
 */
import { afterAll } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { scratchDiskUnavailable } from "../src/host/scratch-disks";
import { parseScenarioText } from "../src/scenario/format";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const PAGE = 4096;

/** The repository root. */
export const ROOT = join(import.meta.dir, "..");

/**
 * Runs the real `bounce-bench` executable in `cwd` and collects its exit code and output. It is
 * killed after 30 s: a command that blocks (on a FIFO, say) fails its test instead of hanging it.
 */
export function runCliIn(cwd: string, ...args: string[]): { code: number; stdout: string; stderr: string } {
  const result = Bun.spawnSync([process.execPath, join(ROOT, "cli/bounce-bench.ts"), ...args], { cwd, timeout: 30_000 });
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

/** A fresh directory under the system temporary directory, removed after the test file. */
export function scratchDir(label = "test"): string {
  const dir = mkdtempSync(join(tmpdir(), `bounce-bench-${label}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function fileBytes(path: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(readFileSync(path));
}

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export function randomBytes(len: number, seed: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(len);
  let x = seed | 0 || 0x9e3779b9;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

/**
 * The reference model of a PagedRange, written from the definition and nothing else: byte `i`
 * of the range lives at guest physical address
 * `gpns[floor((offset+i)/4096)] * 4096 + (offset+i) % 4096`.
 */
export function modelAddresses(offset: number, len: number, gpns: readonly number[]): number[] {
  const addresses: number[] = [];
  for (let i = 0; i < len; i++) {
    const position = offset + i;
    addresses.push(gpns[Math.floor(position / PAGE)]! * PAGE + (position % PAGE));
  }
  return addresses;
}

/** Maximal runs of consecutive addresses: what a correct iovec list must be. */
export function modelRuns(addresses: readonly number[]): { base: number; len: number }[] {
  const runs: { base: number; len: number }[] = [];
  for (const address of addresses) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last.base + last.len === address) last.len++;
    else runs.push({ base: address, len: 1 });
  }
  return runs;
}

/** Error thrown by `fn`, for asserting on its class, code and message. */
export function thrown(fn: () => unknown): Error & { code?: string; kind?: string } {
  try {
    fn();
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error("expected an error, but none was thrown");
}

/** The error a promise rejects with; fails the test if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; kind?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error("expected a rejection, but the promise resolved");
}

/**
 * The repro corpus files (`scenarios/*.json`, sorted) that this machine can run, and the
 * names of those it cannot, each with why (a real disk kind needs root and its programs).
 */
export function runnableScenarios(): { runnable: string[]; unavailable: string[] } {
  const corpus = join(ROOT, "scenarios");
  const runnable: string[] = [];
  const unavailable: string[] = [];
  for (const name of readdirSync(corpus).filter((file) => file.endsWith(".json")).sort()) {
    const path = join(corpus, name);
    const kind = parseScenarioText(readFileSync(path, "utf8"), path).diskKind;
    const why = scratchDiskUnavailable(kind);
    if (why === null) runnable.push(path);
    else unavailable.push(`${name} (disk kind ${kind} ${why})`);
  }
  return { runnable, unavailable };
}
