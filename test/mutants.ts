/**
 * `npm run mutants`: single-point mutations of the code (an operator, a constant, a unit, a
 * rank), each applied to a private copy of the repository and judged by the test files that
 * should catch it. A mutant the tests kill is a bug the suite would catch; one that survives
 * is a hole in the suite, named with where and what. Prints the kill rate; exit 1 below 90%.
 *
 *   npm run mutants                      every mutant
 *   npm run mutants -- --only stat       the mutants whose name holds "stat"
 *
 * A mutant whose text is no longer in its file (the code moved on) is reported stale, never
 * silently counted: update it.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { tearDown } from "../src/host/scratch-dir";

interface Mutant {
  name: string;
  file: string;
  /** Text that occurs exactly once in `file`, and what it becomes. */
  from: string;
  to: string;
  /** The test files that should kill it. */
  tests: string[];
}

const STATS = ["test/bench-measure.test.ts"];
/** Longest a mutant's tests may run, in seconds: beyond it the mutant hung them, which CI would catch. */
const MUTANT_TIMEOUT_S = 600;
const MUTANTS: Mutant[] = [
  // statistics: medians, spread, the rank test, the change
  { name: "stat: median rank", file: "src/bench/statistics.ts", from: "median: at(0.5)", to: "median: at(0.45)", tests: STATS },
  { name: "stat: quartiles from 5 runs", file: "src/bench/statistics.ts", from: "sorted.length >= 4 ?", to: "sorted.length > 4 ?", tests: STATS },
  { name: "stat: quartile rank off by half", file: "src/bench/statistics.ts", from: "[at(0.25), at(0.75)]", to: "[at(0.2), at(0.75)]", tests: STATS },
  { name: "stat: rank test counts the extreme tail strictly", file: "src/bench/statistics.ts", from: "Math.abs(sum - mean) >= distance - 1e-9", to: "Math.abs(sum - mean) > distance + 1e-9", tests: STATS },
  { name: "stat: ties get the low rank", file: "src/bench/statistics.ts", from: "for (let k = i; k < j; k++) doubled[k] = i + 1 + j;", to: "for (let k = i; k < j; k++) doubled[k] = 2 * (k + 1);", tests: STATS },
  { name: "stat: finding at p < 0.1", file: "src/bench/statistics.ts", from: "beyondNoise: p < FINDING_P", to: "beyondNoise: p < 2 * FINDING_P", tests: STATS },
  { name: "stat: change in percent of the new median", file: "src/bench/statistics.ts", from: "((median(other) - from) / from) * 100", to: "((median(other) - from) / median(other)) * 100", tests: STATS },
  { name: "stat: normal approximation without the half", file: "src/bench/statistics.ts", from: "Math.exp(-(z * z) / 2)", to: "Math.exp(-(z * z))", tests: STATS },
  { name: "stat: continuity correction dropped", file: "src/bench/statistics.ts", from: "Math.max(0, distance - 1) / Math.sqrt(variance)", to: "distance / Math.sqrt(variance) / 2", tests: STATS },
  // figures of a bench case
  { name: "figure: latency ns to us by 1024", file: "src/bench/bench-results.ts", from: "const us = (ns: number) => round(ns / 1000, 3);", to: "const us = (ns: number) => round(ns / 1024, 3);", tests: ["test/bench.test.ts"] },
  { name: "figure: copy rate in GiB by 2^20", file: "src/bench/bench-results.ts", from: "sum + job.copiedBytes, 0) / 2 ** 30", to: "sum + job.copiedBytes, 0) / 2 ** 20", tests: ["test/bench.test.ts"] },
  { name: "figure: copy rate over IO bytes", file: "src/bench/bench-results.ts", from: "round(jobs.reduce((sum, job) => sum + job.copiedBytes, 0) / 2 ** 30", to: "round(bytes / 2 ** 30", tests: ["test/bench.test.ts"] },
  { name: "figure: CPU span from the last job's start", file: "src/bench/statistics.ts", from: "- Math.min(...measured.map((job) => job.processCpuStartNs))", to: "- Math.max(...measured.map((job) => job.processCpuStartNs))", tests: STATS },
  { name: "figure: percentile floor instead of ceil", file: "src/bench/histogram.ts", from: "Math.max(1, Math.ceil((p / 100) * this.count))", to: "Math.max(1, Math.floor((p / 100) * this.count))", tests: ["test/bench.test.ts"] },
  { name: "figure: thread regions in pages", file: "src/bench/job.ts", from: "const unit = Math.max(PAGE_SIZE, alignment.offsetAlign, alignment.readOffsetAlign);", to: "const unit = PAGE_SIZE;", tests: ["test/fio-job.test.ts"] },
  { name: "figure: progress published by count", file: "src/bench/job.ts", from: "if (progress !== undefined && now >= publishAtNs) {", to: "if (progress !== undefined && now >= publishAtNs && (completed & 4095) === 0) {", tests: ["test/bench-measure.test.ts"] },
  { name: "warm-up: the measured run counts the warm-up's calls and copies", file: "src/bench/job.ts", from: "    run.resetCounts();\n", to: "", tests: ["test/bench-measure.test.ts"] },
  { name: "warm-up: the engine's call counts kept", file: "src/io/executor.ts", from: "    this.engine.resetCounts();\n", to: "", tests: ["test/bench-measure.test.ts"] },
  { name: "warm-up: its latencies kept", file: "src/bench/job.ts", from: "    histogram.clear();\n", to: "", tests: ["test/bench-measure.test.ts"] },
  { name: "warm-up: on a ring of its own", file: "src/bench/job.ts", from: "      const warmUp = await phase(spec.rampNs!, null, new Float64Array(thread + 1));", to: "      const warmUp = await (await import(\"../io/engines\")).createEngine(spec.engine, qd, () => {}, spec.uring).close() ?? (await phase(spec.rampNs!, null, new Float64Array(thread + 1)));", tests: ["test/bench.test.ts"] },
  { name: "warm-up: its IOs shown on the progress line", file: "src/bench/job.ts", from: "      const warmUp = await phase(spec.rampNs!, null, new Float64Array(thread + 1));", to: "      const warmUp = await phase(spec.rampNs!, null, spec.progress);", tests: ["test/bench-measure.test.ts"] },
  { name: "figure: repeats not interleaved", file: "src/bench/runner.ts", from: "const repeat = options.repeat ?? 1;", to: "const repeat = 1;", tests: ["test/bench-measure.test.ts"] },
  // the ladder's measuring window (measure/steady-window.ts)
  { name: "window: a process's children not counted", file: "measure/steady-window.ts", from: "  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));\n", to: "", tests: ["test/steady-window.test.ts"] },
  { name: "window: a minor's high bits shifted by a byte", file: "measure/steady-window.ts", from: "((d & 0xffffff00000n) >> 12n)", to: "((d & 0xffffff00000n) >> 8n)", tests: ["test/steady-window.test.ts"] },
  { name: "job: a pass that waits on another's pages polls again instead of awaiting", file: "src/bench/job.ts", from: "      if (next === WAIT) await run.wake();", to: "      if (next === WAIT) continue;", tests: ["test/bench.test.ts"] },
  // verdicts and compare
  { name: "verdict: the wrong direct peer", file: "src/bench/verdicts.ts", from: "peers.find((other) => other.memOffset === result.memOffset) ??", to: "peers.find((other) => other.memOffset !== result.memOffset) ??", tests: ["test/bench-measure.test.ts", "test/bench.test.ts"] },
  { name: "compare: CPU per IO higher is better", file: "src/bench/compare.ts", from: '{ key: "cpuNsPerIo", better: "lower", judged: true }', to: '{ key: "cpuNsPerIo", better: "higher", judged: true }', tests: ["test/compare.test.ts"] },
  { name: "compare: regression without noise", file: "src/bench/compare.ts", from: "const judged = metric.judged && change.beyondNoise;", to: "const judged = metric.judged;", tests: ["test/compare.test.ts"] },
  { name: "compare: several runs a side judged by the first run's repeats", file: "src/bench/compare.ts", from: 'if (judgedBy === "invocations") return side.map(figure);', to: "", tests: ["test/compare.test.ts"] },
  { name: "compare: a case some run lacks compared", file: "src/bench/compare.ts", from: "if (maps.every((map) => map.has(name)))", to: "if (maps.some((map) => map.has(name)))", tests: ["test/compare.test.ts"] },
  { name: "options: zero repeats accepted", file: "src/bench/bench-options.ts", from: 'for (const [flag, value] of [["--repeat", options.repeat ?? 1], ["--budget", options.budget]] as const) {', to: 'for (const [flag, value] of [["--budget", options.budget]] as const) {', tests: ["test/bench.test.ts"] },
  { name: "compare: scratch paths differ", file: "src/bench/compare.ts", from: '.filter((key) => !(scratch && key === "disk"))', to: "", tests: ["test/compare.test.ts"] },
  // the report
  { name: "report: an axis without its unit", file: "cli/html-report.ts", from: 'title: "latency [us]"', to: 'title: "latency"', tests: ["test/html-report.test.ts"] },
  { name: "report: two series one colour", file: "cli/html-report.ts", from: 'export const PALETTE = ["#0072B2", "#E69F00",', to: 'export const PALETTE = ["#0072B2", "#0072B2",', tests: ["test/html-report.test.ts"] },
  { name: "report: the decision map without the run's offsets", file: "cli/html-report.ts", from: "8, 100, ...measuredOffsets])]", to: "8, 100])]", tests: ["test/html-report.test.ts"] },
  // the planner and the kernel's rule
  { name: "rule: memory alignment not checked", file: "src/base/alignment-rules.ts", from: "if (address % memAlign !== 0) return", to: "if (address % memAlign === -1) return", tests: ["test/planner.test.ts"] },
  { name: "rule: length checked against memory", file: "src/base/alignment-rules.ts", from: "if (len % block !== 0) return", to: "if (len % memAlign !== 0) return", tests: ["test/planner.test.ts"] },
  { name: "rule: block of reads is the writes'", file: "src/base/alignment-rules.ts", from: 'op === "read" ? alignment.readOffsetAlign : alignment.offsetAlign', to: "alignment.offsetAlign", tests: ["test/planner.test.ts", "test/scenarios.test.ts"] },
  { name: "plan: widened start rounded up", file: "src/io/planner.ts", from: "const diskStart = widen ? Math.floor(at / block) * block : at;", to: "const diskStart = widen ? Math.ceil(at / block) * block : at;", tests: ["test/planner.test.ts"] },
  { name: "plan: unaligned write bounces instead of RMW", file: "src/io/planner.ts", from: 'decision = !diskAligned && op === "write" ? "rmw" : "bounce";', to: 'decision = "bounce";', tests: ["test/planner.test.ts"] },
  { name: "plan: split reported as direct", file: "src/io/planner.ts", from: 'if (decision === "direct") decision = "split";', to: "", tests: ["test/planner.test.ts"] },
  // guest memory and request buffers
  { name: "memory: offset in the first page", file: "src/memory/paged-range.ts", from: "return this.#start % PAGE_SIZE;", to: "return this.#start % (PAGE_SIZE / 2);", tests: ["test/paged-range.test.ts"] },
  { name: "memory: page count off by one", file: "src/memory/paged-range.ts", from: "return Math.ceil(this.#end / PAGE_SIZE) - Math.floor(this.#start / PAGE_SIZE);", to: "return Math.floor(this.#end / PAGE_SIZE) - Math.floor(this.#start / PAGE_SIZE);", tests: ["test/paged-range.test.ts"] },
  // concurrency
  { name: "locks: touching ranges overlap", file: "src/io/range-locks.ts", from: "!(table[other + START]! < end && start < table[other + END]!)", to: "!(table[other + START]! <= end && start <= table[other + END]!)", tests: ["test/range-locks.test.ts"] },
  { name: "budget: an oversize request waits", file: "src/bounce/bounce-tracker.ts", from: "if (pages > this.maxPagesPerThread) {", to: "if (pages > this.maxPagesPerThread * 2) {", tests: ["test/bounce.test.ts", "test/executor.test.ts"] },
  { name: "ring: one more in flight than its entries", file: "src/native/uring.ts", from: "if (this.#inFlight >= this.entries) {", to: "if (this.#inFlight > this.entries) {", tests: ["test/engines.test.ts"] },
  { name: "ring: reaped completions not counted", file: "src/native/uring.ts", from: "    this.#inFlight -= n;\n", to: "\n", tests: ["test/engines.test.ts"] },
  { name: "ring: SQPOLL submissions entered like any others", file: "src/native/uring.ts", from: "    if (this.sqpoll) {\n", to: "    if (this.sqpoll && flags === -1) {\n", tests: ["test/bench.test.ts"] },
  { name: "uring: a registered file named by its descriptor", file: "src/io/engines.ts", from: "const target = fixedFile ? 0 : fd;", to: "const target = fd;", tests: ["test/bench.test.ts"] },
  { name: "uring: a fixed buffer's end not checked", file: "src/io/engines.ts", from: "base + iovecs.length(first) <= ends[k]!", to: "base < ends[k]!", tests: ["test/engines.test.ts"] },
  { name: "uring: a later iovec outside the buffer sent fixed", file: "src/io/engines.ts", from: "if (at < starts[buffer]! || at + iovecs.length(i) > ends[buffer]!) return -1;", to: "if (at < starts[buffer]!) return -1;", tests: ["test/engines.test.ts"] },
  { name: "uring: several iovecs sent as READ_FIXED of the first", file: "src/io/engines.ts", from: "if (buffer >= 0 && count === 1) {", to: "if (buffer >= 0) {", tests: ["test/engines.test.ts"] },
  { name: "uring: calls that cannot go fixed not counted", file: "src/io/engines.ts", from: "if (this.#fixedBuffers) this.unfixedCalls++;", to: "", tests: ["test/bench.test.ts"] },
  { name: "bench: the guest registered under --fixedbufs bounce", file: "src/bench/job.ts", from: '...(spec.uring?.registeredMemory === "bounce" ? [] :', to: '...(spec.uring?.registeredMemory === "none" ? [] :', tests: ["test/bench.test.ts"] },
  { name: "fixed: a guest call judged fixed under --fixedbufs bounce", file: "src/io/prepared-io.ts", from: 'if (kind === "guest" && registered !== "all") return false;', to: "", tests: ["test/bench.test.ts"] },
  { name: "probe: fixed buffers measured with preadv", file: "src/disk/direct-io-probe.ts", from: 'if (method === "fixed") {\n      const ring', to: 'if (method === "none") {\n      const ring', tests: ["test/kernel-checks.test.ts"] },
  { name: "uring: nonvectored sends several iovecs as READ of the first", file: "src/io/engines.ts", from: "if (count === 1 && this.#nonvectored) {", to: "if (this.#nonvectored) {", tests: ["test/engines.test.ts"] },
  { name: "uring: nonvectored READ given the iovec array's address", file: "src/io/engines.ts", from: "ring.prepare(write ? IORING_OP_WRITE : IORING_OP_READ, target, iovecs.base(first) as Address, iovecs.length(first),", to: "ring.prepare(write ? IORING_OP_WRITE : IORING_OP_READ, target, address, iovecs.length(first),", tests: ["test/engines.test.ts"] },
  { name: "uring: nonvectored writes sent as READ", file: "src/io/engines.ts", from: "ring.prepare(write ? IORING_OP_WRITE : IORING_OP_READ,", to: "ring.prepare(IORING_OP_READ,", tests: ["test/engines.test.ts"] },
  { name: "bench: nonvectored calls of several iovecs not counted", file: "src/io/engines.ts", from: "if (this.#nonvectored) this.vectoredCalls++;", to: "", tests: ["test/bench.test.ts"] },
  { name: "fio: --nonvectored not in the job", file: "src/bench/fio-job.ts", from: "`nonvectored=${options.uring?.nonvectored ? 1 : 0}`", to: "`nonvectored=0`", tests: ["test/bench.test.ts"] },
  { name: "disk: reads update the disk's access time", file: "src/disk/disk.ts", from: "      keepAccessTime(fd);\n", to: "\n", tests: ["test/io.test.ts"] },
  { name: "ring: its descriptor never registered", file: "src/native/uring.ts", from: "      this.#registerRing();\n", to: "\n", tests: ["test/engines.test.ts"] },
  { name: "ring: its registration not given back at close", file: "src/native/uring.ts", from: '        rawSyscall(SYS_IO_URING_REGISTER, "io_uring_register(UNREGISTER_RING_FDS)"', to: '        if (update[0] === -1) rawSyscall(SYS_IO_URING_REGISTER, "io_uring_register(UNREGISTER_RING_FDS)"', tests: ["test/engines.test.ts"] },
  { name: "ring: a refused registration taken for one", file: "src/native/uring.ts", from: "      if (error instanceof OsError) return; // EINVAL before 5.18", to: "      if (error instanceof OsError) { this.#enterFlags = IORING_ENTER_REGISTERED_RING; return; } // EINVAL before 5.18", tests: ["test/engines.test.ts"] },
  { name: "bench: a ring entered by descriptor reported as registered", file: "src/io/engines.ts", from: "    return this.#ring.registeredRing;", to: "    return true;", tests: ["test/bench.test.ts"] },
  { name: "bench: the registered ring left out of a case", file: "src/bench/bench-results.ts", from: "registeredRing: jobs.every((job) => job.registeredRing === null) ? null :", to: "registeredRing: jobs.length > 0 ? null :", tests: ["test/bench.test.ts"] },
  { name: "ring: entered by index without saying so", file: "src/native/uring.ts", from: "    this.#enterFlags = IORING_ENTER_REGISTERED_RING;\n", to: "\n", tests: ["test/engines.test.ts"] },
  { name: "ring: entered by descriptor with the registered flag", file: "src/native/uring.ts", from: "    this.#enterFd = this.#ringIndex;\n", to: "\n", tests: ["test/engines.test.ts"] },
  { name: "ring: fixed buffers without their index", file: "src/native/uring.ts", from: "sqes[at + 10] = bufIndex;", to: "sqes[at + 10] = bufIndex + 1;", tests: ["test/engines.test.ts"] },
  // traces: replay's verdicts, the converters, the capture's assembly of lines
  { name: "replay: needless counts IOs that copied nothing", file: "src/trace/replay.ts", from: "if (decided.copied > 0 && verdict.takesDirect[k]) {", to: "if (verdict.takesDirect[k]) {", tests: ["test/trace.test.ts"] },
  { name: "replay: shapes keyed without the disk offset", file: "src/trace/replay.ts", from: "let key = `${io.op} ${io.offset % unit}`;", to: "let key = `${io.op}`;", tests: ["test/trace.test.ts"] },
  { name: "replay: shapes keyed without how iovecs stand", file: "src/trace/replay.ts", from: 'key += step >= -1 && step <= 2 ? ` ${step}:` : " f:";', to: "", tests: ["test/trace.test.ts"] },
  { name: "replay: refusals judged on the direct iovecs", file: "src/trace/replay.ts", from: "refused: this.#kernels.map((kernel) => judge(calls, kernel))", to: "refused: this.#kernels.map((kernel) => judge(direct, kernel))", tests: ["test/trace.test.ts"] },
  { name: "replay: guest pages of a slot overlap the next", file: "src/trace/replay-execute.ts", from: "if (page !== previous + 1 && previous !== -2) next++;", to: "", tests: ["test/trace.test.ts"] },
  { name: "replay: verification skipped", file: "src/trace/replay-execute.ts", from: "if (mismatch !== null) throw new MismatchError(mismatch);", to: "", tests: ["test/trace.test.ts"] },
  { name: "convert: blkparse sectors of 4096", file: "src/trace/convert.ts", from: "offset: Number(sector) * 512, len: Number(count) * 512", to: "offset: Number(sector) * 4096, len: Number(count) * 512", tests: ["test/trace.test.ts"] },
  { name: "convert: iolog v3 times in us", file: "src/trace/convert.ts", from: "t = ms * 1e6;", to: "t = ms * 1e3;", tests: ["test/trace.test.ts"] },
  { name: "capture: results and errors swapped", file: "src/trace/capture-lines.ts", from: "if (open.done.result >= 0) open.io.result = open.done.result;", to: "if (open.done.result > 0) open.io.result = open.done.result;", tests: ["test/trace.test.ts", "test/trace-capture.test.ts"] },
  { name: "capture: an IO complete before its iovecs", file: "src/trace/capture-lines.ts", from: "if (open.expect > 0 || open.done === null) return;", to: "if (open.done === null) return;", tests: ["test/trace.test.ts"] },
  { name: "capture: an early end line forgotten", file: "src/trace/capture-lines.ts", from: "done: this.#early.get(key) ?? null", to: "done: null", tests: ["test/trace.test.ts"] },
  { name: "capture: io_uring offsets as the file position", file: "src/trace/capture-program.ts", from: "(int64)$sqe->off, $sqe->len, $op", to: "(int64)$f->f_pos, $sqe->len, $op", tests: ["test/trace-capture.test.ts"] },
  { name: "capture: a registered ring looked up one slot off", file: "src/trace/capture-program.ts", from: "if (${index} == ${slot})", to: "if (${index} == ${slot} + 1)", tests: ["test/trace-capture.test.ts"] },
  { name: "capture: every registered ring taken for the first", file: "src/trace/capture-program.ts", from: "curtask->io_uring->registered_rings[${slot}]", to: "curtask->io_uring->registered_rings[0]", tests: ["test/trace-capture.test.ts"] },
  { name: "capture: read and write by the file position", file: "src/trace/capture-program.ts", from: 'call.offset === "none" ? "$f->f_pos"', to: 'call.offset === "none" ? "0"', tests: ["test/trace-capture.test.ts"] },
  // values and safety
  { name: "parse: k is 1000", file: "src/base/value-parsers.ts", from: "k: 2 ** 10,", to: "k: 1000,", tests: ["test/value-parsers.test.ts"] },
  { name: "fio: ':' not escaped", file: "src/bench/fio-job.ts", from: 'return path.replaceAll(":", "\\\\:");', to: "return path;", tests: ["test/fio-job.test.ts"] },
  { name: "fio: '$' let through", file: "src/bench/fio-job.ts", from: '[["$", "fio expands ${VAR} and $keywords"], ', to: "[", tests: ["test/fio-job.test.ts"] },
  { name: "safety: a device written without --overwrite-device", file: "src/disk/disk.ts", from: "if (options.overwriteDevice !== true) {", to: "if (options.overwriteDevice === false) {", tests: ["test/device-writes.test.ts"] },
  { name: "safety: a mounted device overwritten", file: "src/host/block-devices.ts", from: "if (mounted.length > 0) return", to: "if (mounted.length > 1) return", tests: ["test/device-writes.test.ts"] },
  { name: "safety: resource check sums nothing", file: "src/host/resources.ts", from: "if (free !== null && sum > free) {", to: "if (free !== null && sum > free * 1024) {", tests: ["test/resources.test.ts"] },
  { name: "safety: scenario fill not chunked at the end", file: "src/scenario/run.ts", from: "const len = Math.min(CHUNK - ((at + offset) % CHUNK), total - offset);", to: "const len = Math.min(CHUNK - ((at + offset) % CHUNK), total - offset) + 1;", tests: ["test/scenarios.test.ts"] },
  { name: "safety: tracing instance left by a killed run", file: "src/host/scratch-dir.ts", from: "  removeTraceInstance(dir);\n", to: "\n", tests: ["test/page-cache.test.ts"] },
  { name: "safety: EPIPE exits without cleanup", file: "cli/signals.ts", from: "    if (active.size === 0) process.exit(128 + SIGPIPE);", to: "    process.exit(128 + SIGPIPE);", tests: ["test/launcher.test.ts"] },
  { name: "safety: repro's second signal exits at once", file: "cli/commands/repro.ts", from: "{ exitOnSecond: false }", to: "{ exitOnSecond: true }", tests: ["test/faults.test.ts"] },
  { name: "scenario: refused write's partial change not seen", file: "src/io/verify.ts", from: "return index < 0 ? null : at + index * FINGERPRINT_CHUNK;", to: "return null;", tests: ["test/scenarios.test.ts"] },
];

const flags = parseArgs({ args: process.argv.slice(2), options: { only: { type: "string", default: "" } }, strict: true }).values;
const chosen = MUTANTS.filter((m) => flags.only === "" || m.name.includes(flags.only!));
const ROOT = join(import.meta.dir, "..");

// A private copy: the working tree is never mutated, even if this script is killed.
const copy = mkdtempSync(join(tmpdir(), "bounce-bench-mutants-"));
try {
  for (const entry of ["src", "cli", "test", "schema", "scenarios", "examples", "docs", "measure", "bin", "README.md", "package.json", "tsconfig.json", "bunfig.toml"]) cpSync(join(ROOT, entry), join(copy, entry), { recursive: true });
  symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"));
  const results: { mutant: Mutant; outcome: "killed" | "survived" | "stale" }[] = [];
  for (const mutant of chosen) {
    const path = join(copy, mutant.file);
    const original = readFileSync(path, "utf8");
    const at = original.indexOf(mutant.from);
    if (at < 0 || original.indexOf(mutant.from, at + 1) >= 0) {
      results.push({ mutant, outcome: "stale" });
      console.log(`STALE     ${mutant.name} (${mutant.file}: the text is ${at < 0 ? "gone" : "there more than once"})`);
      continue;
    }
    writeFileSync(path, original.slice(0, at) + mutant.to + original.slice(at + mutant.from.length));
    const tmp = join(copy, ".tmp-mutant");
    mkdirSync(tmp);
    try {
      // A mutant that makes the suite hang (an io_uring never woken) is caught too: CI would run
      // over time. coreutils' timeout runs the tests in a process group of their own and ends the
      // whole group, so nothing they started (a bench under strace) is left running.
      const run = Bun.spawnSync(["timeout", "-k", "10", String(MUTANT_TIMEOUT_S), process.execPath, "test", "--timeout", "60000", ...mutant.tests.map((test) => join(copy, test))], {
        cwd: copy,
        env: { ...process.env, TMPDIR: tmp },
        stdout: "ignore",
        stderr: "ignore",
      });
      const outcome = run.exitCode === 0 ? "survived" : "killed";
      results.push({ mutant, outcome });
      console.log(`${outcome.toUpperCase().padEnd(9)} ${mutant.name} (${mutant.file})`);
    } finally {
      writeFileSync(path, original);
      // A mutant that brings a leak back leaves the leak: the scratch teardown removes it.
      tearDown(tmp);
    }
  }
  const judged = results.filter((r) => r.outcome !== "stale");
  const killed = judged.filter((r) => r.outcome === "killed").length;
  const rate = judged.length === 0 ? 0 : killed / judged.length;
  console.log(`\n${killed} of ${judged.length} mutants killed (${(rate * 100).toFixed(0)}%)${results.length > judged.length ? `; ${results.length - judged.length} stale` : ""}`);
  process.exitCode = rate >= 0.9 && judged.length === results.length ? 0 : 1;
} finally {
  rmSync(copy, { recursive: true, force: true });
}
