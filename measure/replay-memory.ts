/**
 * `npm run bench:replay`: replay's memory on long traces. Writes synthetic traces of growing
 * length (by default 100 thousand, 1 million and 10 million IOs) shaped like a VMM's: one to four
 * iovecs of page and sub-page lengths at a handful of offsets in their pages, scattered over
 * a large guest, reads and writes at random block offsets. Then runs `bounce-bench replay TRACE
 * --rules all --kernel all --json` on each as a child process, sampling its resident memory
 * (VmRSS) every 50 ms and reading its peak (VmHWM) at the end; reports both, the time taken,
 * and the file's size. Memory that stays flat while the trace grows a hundredfold is bounded.
 *
 *   --ios 100000,1000000,10000000   trace lengths
 *   --keep                          leave the traces in the scratch directory (printed)
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { numberFlag, scriptOptions, usage } from "./script-options";

const SCRIPT = "bench:replay";
const options = scriptOptions(SCRIPT, { ios: { type: "string", default: "100000,1000000,10000000" }, keep: { type: "boolean", default: false } });
const lengths = options.ios.split(",").map((text) => numberFlag(SCRIPT, "ios", text, 1));
if (lengths.length === 0) usage(SCRIPT, "--ios: give at least one length");

const PAGE = 4096;
const OFFSETS = [0, 0, 0, 0, 512, 1024, 2048, 8];
const LENGTHS = [512, 1024, 4096, 4096, 8192, 16384, 65536];

/** xorshift32: the same traces every run. */
let x = 0x2545f491;
function random(n: number): number {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return (x >>> 0) % n;
}

function writeTrace(path: string, ios: number): void {
  const fd = openSync(path, "w");
  let buffer = "";
  const flush = () => {
    writeSync(fd, buffer);
    buffer = "";
  };
  buffer += `${JSON.stringify({ type: "header", format: "bounce-bench-trace", version: 1, tool: SCRIPT, started: new Date().toISOString(), kernel: null, host: null, disk: null, captured: { by: SCRIPT, calls: [], notCaptured: [], pids: [], command: null }, synthetic: { from: SCRIPT, memory: "random VMM-like shapes" } })}\n`;
  for (let i = 0; i < ios; i++) {
    const count = 1 + random(4);
    const iovecs: [number, number][] = [];
    let page = 0x7f0000000 + random(1 << 22);
    for (let v = 0; v < count; v++) {
      const len = LENGTHS[random(LENGTHS.length)]!;
      const address = page * PAGE + OFFSETS[random(OFFSETS.length)]!;
      iovecs.push([address, len]);
      // The next iovec: right after this one half of the time (guest pages in a run), else elsewhere.
      page = random(2) === 0 ? Math.ceil((address + len) / PAGE) : 0x7f0000000 + random(1 << 22);
    }
    const t = i * 10_000;
    buffer += `{"type":"io","t":${t},"end":${t + 8000},"op":"${random(3) === 0 ? "write" : "read"}","offset":${random(1 << 20) * 512},"iovecs":${JSON.stringify(iovecs)},"result":null}\n`;
    if (buffer.length > 1 << 20) flush();
  }
  buffer += `${JSON.stringify({ type: "end", ios, missed: {}, maxInFlight: 32 })}\n`;
  flush();
  closeSync(fd);
}

function statusKb(pid: number, field: string): number | null {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match === null ? null : Number(match[1]);
  } catch {
    return null;
  }
}

const dir = mkdtempSync(join(tmpdir(), "bounce-bench-replay-memory-"));
const rows: string[] = [];
try {
  for (const ios of lengths) {
    const path = join(dir, `${ios}.trace`);
    writeTrace(path, ios);
    const started = performance.now();
    const child = Bun.spawn([process.execPath, join(import.meta.dir, "..", "cli", "bounce-bench.ts"), "replay", path, "--rules", "all", "--kernel", "all", "--json"], { stdout: "pipe", stderr: "inherit" });
    let peakRss = 0;
    let hwm = 0;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, statusKb(child.pid, "VmRSS") ?? 0);
      hwm = Math.max(hwm, statusKb(child.pid, "VmHWM") ?? 0);
    }, 50);
    const output = await new Response(child.stdout).text();
    clearInterval(sampler);
    if ((await child.exited) !== 0) usage(SCRIPT, `replay of ${ios} IOs exited ${child.exitCode}`);
    const seconds = (performance.now() - started) / 1000;
    const doc = JSON.parse(output);
    rows.push(
      `| ${ios.toLocaleString("en")} | ${(statSync(path).size / 2 ** 20).toFixed(0)} MiB | ${doc.summary.shapes.toLocaleString("en")} | ${seconds.toFixed(1)} s | ${(peakRss / 1024).toFixed(0)} MiB | ${(hwm / 1024).toFixed(0)} MiB |`,
    );
    console.error(`${SCRIPT}: ${ios} IOs done in ${seconds.toFixed(1)} s`);
    if (!options.keep) rmSync(path);
  }
  console.log("| IOs | trace | shapes decided | time | peak RSS sampled | VmHWM sampled |");
  console.log("|---|---|---|---|---|---|");
  for (const row of rows) console.log(row);
  if (options.keep) console.log(`traces kept in ${dir}`);
} finally {
  if (!options.keep) rmSync(dir, { recursive: true, force: true });
}
