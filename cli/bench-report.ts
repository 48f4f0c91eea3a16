/**
 * `bench`'s output in its three formats: a table for people (fixed-width columns, so each row
 * prints as its case finishes; as many columns as the terminal is wide), CSV, and the JSON
 * document that records everything needed to rerun and compare the run.
 *
 * Columns are named (`--columns`); default ones give way to a narrow terminal (never
 * `decision`). Rates are medians over the runs, with the spread of MiB/s in percent of the
 * median; the "vs direct" columns compare each bounced case with its direct peer
 * (`verdicts.ts`), in parentheses when it is not a finding (the rank test, `statistics.ts`).
 */
import { InvalidInputError } from "../src/base/errors";
import { formatBytes } from "../src/base/value-parsers";
import type { BenchOptions } from "../src/bench/bench-options";
import type { BenchCaseResult, BenchReport } from "../src/bench/bench-results";
import { bounceVerdicts, changes, directPeer, type Change } from "../src/bench/verdicts";
import { FINDING_P, RUNS_FOR_A_FINDING } from "../src/bench/statistics";
import { jsonDocument } from "./json-output";

interface Column {
  name: string;
  /** Header, with the unit. */
  head: string;
  width: number;
  left?: boolean;
  help: string;
  text(result: BenchCaseResult, all: readonly BenchCaseResult[]): string;
  /** The raw value for CSV (the text when absent), in `unit`, the table's own. */
  raw?(result: BenchCaseResult, all: readonly BenchCaseResult[]): string | number;
  /** The unit of the values, named in the CSV header (`cpu [us/IO]`); none for names and counts. */
  unit?: string;
}

const fixed = (value: number | null | undefined, digits: number) => (value === null || value === undefined ? "-" : value.toFixed(digits));
const latency = (key: "p50" | "p90" | "p99" | "p999" | "max" | "mean" | "stdev") => (r: BenchCaseResult) => fixed(r.latencyUs?.[key], 1);
const signed = (change: Change) => `${change.percent >= 0 ? "+" : ""}${change.percent.toFixed(0)}%`;
/** A change as a finding, or in parentheses when it is within the noise. */
const finding = (change: Change | null) => (change === null ? "" : change.beyondNoise ? signed(change) : `(${signed(change)})`);
const versusDirect = (key: "mibPerSec" | "cpuNsPerIo") => (r: BenchCaseResult, all: readonly BenchCaseResult[]) => {
  const peer = directPeer(r, all);
  return finding(peer === null ? null : changes(peer, r)[key]);
};
/** A "direct" case the filesystem served through the page cache is marked, with a note under the table. */
const PAGE_CACHE_MARK = "~pc";
const throughCache = (r: BenchCaseResult) => r.mode !== "buffered" && r.pageCache.used === true;
const decisionText = (r: BenchCaseResult) =>
  r.error === null ? `${r.decision}${throughCache(r) ? PAGE_CACHE_MARK : ""}` : r.ios === 0 ? r.error.code : `${r.decision}+${r.error.code}`;

export const BENCH_COLUMNS: readonly Column[] = [
  { name: "op", head: "op", width: 9, left: true, help: "workload", text: (r) => r.op },
  { name: "bs", unit: "bytes", head: "bs", width: 5, help: "block size (sg: the --seg shape)", text: (r) => (r.shape === null ? formatBytes(r.bs) : `${formatBytes(r.bs)}sg`), raw: (r) => r.bs },
  { name: "off", unit: "bytes", head: "off", width: 4, help: "memory offset of the guest buffer in its page", text: (r) => String(r.memOffset) },
  { name: "mode", head: "mode", width: 8, left: true, help: "--mode", text: (r) => r.mode },
  { name: "decision", head: "decision", width: 8, left: true, help: "what the planner decided (or the error)", text: decisionText },
  { name: "mibs", unit: "MiB/s", head: "MiB/s", width: 8, help: "throughput, median of the runs", text: (r) => fixed(r.mibPerSec, 1), raw: (r) => r.mibPerSec },
  {
    name: "spread",
    unit: "%",
    head: "±%",
    width: 4,
    help: "spread of MiB/s over the runs: (max - min) / median, in percent",
    text: (r) => (r.repeats < 2 || r.mibPerSec === 0 ? "-" : (((r.mibPerSecMax - r.mibPerSecMin) / r.mibPerSec) * 100).toFixed(0)),
  },
  { name: "iops", unit: "IO/s", head: "IOPS", width: 7, help: "IOs per second, median", text: (r) => String(r.iops) },
  { name: "p50", unit: "us", head: "p50 us", width: 7, help: "median latency", text: latency("p50") },
  { name: "p90", unit: "us", head: "p90 us", width: 7, help: "90th percentile latency", text: latency("p90") },
  { name: "p99", unit: "us", head: "p99 us", width: 7, help: "99th percentile latency", text: latency("p99") },
  { name: "p999", unit: "us", head: "p99.9 us", width: 8, help: "99.9th percentile latency", text: latency("p999") },
  { name: "max", unit: "us", head: "max us", width: 8, help: "largest latency", text: latency("max") },
  { name: "mean", unit: "us", head: "mean us", width: 8, help: "mean latency", text: latency("mean") },
  { name: "stdev", unit: "us", head: "sd us", width: 7, help: "standard deviation of latency", text: latency("stdev") },
  { name: "cpu", unit: "us/IO", head: "CPU us/IO", width: 9, help: "process CPU per IO (all threads, io_uring workers included), median", text: (r) => fixed(r.cpuNsPerIo / 1000, 2), raw: (r) => r.cpuNsPerIo / 1000 },
  { name: "thcpu", unit: "us/IO", head: "IO thr us/IO", width: 12, help: "the IO threads' own CPU per IO", text: (r) => fixed(r.threadCpuNsPerIo / 1000, 2), raw: (r) => r.threadCpuNsPerIo / 1000 },
  { name: "util", unit: "cores", head: "cores", width: 5, help: "CPU utilisation: process CPU over wall time, in cores", text: (r) => fixed(r.cpuUtilization, 2) },
  { name: "qd", unit: "IOs", head: "eff qd", width: 6, help: "IOs in flight per thread on average (IOPS x mean latency)", text: (r) => fixed(r.effectiveQd, 1) },
  { name: "calls", unit: "per IO", head: "calls/IO", width: 8, help: "system calls or io_uring SQEs per IO", text: (r) => fixed(r.callsPerIo, 2) },
  { name: "segs", head: "phys segs", width: 9, help: "physically contiguous runs of the memory the device transfers", text: (r) => (r.physicalSegments === null ? "-" : String(r.physicalSegments)) },
  { name: "gsegs", head: "guest segs", width: 10, help: "physically contiguous runs of the guest buffer (what direct IO from it makes)", text: (r) => (r.guestSegments === null ? "-" : String(r.guestSegments)) },
  { name: "copy", unit: "GiB/s", head: "copy GiB/s", width: 10, help: "the guest <-> bounce copy's own rate", text: (r) => (r.bounce.copyNs > 0 ? r.bounce.copyGiBPerSec.toFixed(1) : "-") },
  {
    name: "vs",
    head: "vs",
    width: 4,
    help: "the direct case the next two columns compare with: its memory offset (same op and size)",
    text: (r, all) => {
      const peer = directPeer(r, all);
      return peer === null ? "" : `+${peer.memOffset}`;
    },
  },
  { name: "dmibs", unit: "%", head: "Δ MiB/s", width: 7, help: "throughput against the direct case (vs), in percent", text: versusDirect("mibPerSec") },
  { name: "dcpu", unit: "%", head: "Δ CPU", width: 7, help: "CPU per IO against the direct case (vs), in percent", text: versusDirect("cpuNsPerIo") },
  { name: "runs", head: "runs", width: 4, help: "runs measured (--repeat)", text: (r) => String(r.repeats) },
];

export const DEFAULT_COLUMNS = ["op", "bs", "off", "mode", "decision", "mibs", "spread", "p99", "cpu", "util", "dmibs", "dcpu"];
/** Default columns that give way to a narrow terminal, first to last; `decision`, what the tool is about, never does. */
const DROP_ORDER = ["spread", "util", "p99", "dmibs", "dcpu"];

/**
 * `--columns`: `default`, `all`, a list of names, or `+name,...` (a leading `+`) to add to the default set.
 * Bad names are bad input naming the valid ones.
 */
export function parseColumns(text: string | undefined): { names: string[]; chosen: boolean } {
  if (text === undefined || text.trim() === "default") return { names: DEFAULT_COLUMNS, chosen: false };
  if (text.trim() === "all") return { names: BENCH_COLUMNS.map((c) => c.name), chosen: true };
  const items = text.split(",").map((item) => item.trim()).filter((item) => item !== "");
  // `+segs,thcpu` adds both (as --help shows it), as does `+segs,+thcpu`.
  const adding = items[0]?.startsWith("+") ?? false;
  const names = items.map((item) => item.replace(/^\+/, ""));
  for (const name of names) {
    if (!BENCH_COLUMNS.some((column) => column.name === name)) {
      throw new InvalidInputError(`--columns: ${JSON.stringify(name)} is not a column; choose from ${BENCH_COLUMNS.map((c) => c.name).join(", ")}, or default, all`);
    }
  }
  if (names.length === 0) throw new InvalidInputError("--columns: the list is empty");
  return { names: adding ? [...DEFAULT_COLUMNS, ...names.filter((name) => !DEFAULT_COLUMNS.includes(name))] : names, chosen: true };
}

/** The `--columns` help: every column with what it shows. */
export function columnsHelp(): string {
  return BENCH_COLUMNS.map((c) => `  ${c.name.padEnd(9)}${c.head.padEnd(16)}${c.help}`).join("\n");
}

/** A table printed row by row: the header first, then each case as it finishes. */
export class BenchTable {
  readonly columns: Column[];

  /**
   * `width`: the terminal's columns; default columns give way (in `DROP_ORDER`) until the table
   * fits. Columns the user chose are kept whatever the width.
   */
  constructor(names: readonly string[], chosen: boolean, width: number, options: Pick<BenchOptions, "ops" | "modes" | "bs" | "shape">) {
    // The text columns are as wide as the values this sweep can print.
    const widest = (head: string, values: string[]) => Math.max(head.length, ...values.map((value) => value.length));
    const sized: Record<string, number> = {
      op: widest("op", options.ops),
      mode: widest("mode", options.modes),
      bs: widest("bs", options.bs.map((bs) => `${formatBytes(bs)}${options.shape === undefined ? "" : "sg"}`)),
    };
    let columns = names.map((name) => {
      const column = BENCH_COLUMNS.find((c) => c.name === name)!;
      return sized[name] === undefined ? column : { ...column, width: sized[name] };
    });
    if (!chosen) {
      for (const name of DROP_ORDER) {
        if (tableWidth(columns) <= width) break;
        columns = columns.filter((c) => c.name !== name);
      }
    }
    this.columns = columns;
  }

  header(): string {
    const line = this.columns.map((c) => pad(c.head, c.width, c.left)).join("  ");
    return `${line.trimEnd()}\n${this.columns.map((c) => "-".repeat(c.width)).join("  ")}\n`;
  }

  row(result: BenchCaseResult, all: readonly BenchCaseResult[]): string {
    return `${this.columns.map((c) => pad(c.text(result, all), c.width, c.left)).join("  ").trimEnd()}\n`;
  }
}

function tableWidth(columns: readonly Column[]): number {
  return columns.reduce((sum, c) => sum + c.width, 0) + 2 * (columns.length - 1);
}

function pad(text: string, width: number, left = false): string {
  return left ? text.padEnd(width) : text.padStart(width);
}

/** Every column, raw values, one line per case. */
export function benchCsv(report: BenchReport): string {
  const columns = BENCH_COLUMNS;
  const quote = (value: string | number) => (typeof value === "number" || !/[",\n]/.test(value) ? String(value) : `"${value.replaceAll('"', '""')}"`);
  // Each header names its unit; a value that is not there is empty (the table shows "-").
  const lines = [columns.map((c) => quote(c.unit === undefined ? c.name : `${c.name} [${c.unit}]`)).join(",")];
  for (const result of report.results) {
    lines.push(
      columns
        .map((c) => {
          const value = c.raw?.(result, report.results) ?? c.text(result, report.results);
          return quote(value === "-" ? "" : value);
        })
        .join(","),
    );
  }
  return `${lines.join("\n")}\n`;
}

/** The options after defaults, as they ran: what a rerun needs (callbacks and paths of scratch files left out). */
function optionsJson(options: BenchOptions): Record<string, unknown> {
  const { stop: _stop, onProgress: _p, onCase: _c, onWorkspace: _w, onScratch: _s, ...plain } = options;
  return { ...plain, repeat: options.repeat ?? 1, rampSeconds: options.rampSeconds ?? 0 };
}

/** The JSON document: who made it, when, with what options, on what host, and every case. */
export function benchJson(report: BenchReport, options: BenchOptions, startedAt: Date): Record<string, unknown> {
  return jsonDocument("bench", {
    startedAt: startedAt.toISOString(),
    options: optionsJson(options),
    host: report.host,
    rules: report.rules,
    results: report.results,
    verdicts: bounceVerdicts(report.results),
    interrupted: report.interrupted,
  });
}

/** What follows the table: the verdict per block size, then notes on what the columns mean here. */
export function benchFooter(report: BenchReport, table: BenchTable | null): string {
  const lines: string[] = [];
  const verdicts = bounceVerdicts(report.results);
  if (verdicts.length > 0) {
    lines.push("", "what bouncing costs, like for like: forced bounce against direct IO at the same memory offset");
    const range = (median: number, min: number, max: number, scale: number, digits: number) =>
      `${(median / scale).toFixed(digits)} [${(min / scale).toFixed(digits)}-${(max / scale).toFixed(digits)}]`;
    const say = (change: Change) => `${signed(change)}${change.beyondNoise ? "" : " ~"}`;
    const rows = [["case", "metric", "change", "direct [min-max]", "bounce [min-max]"]];
    for (const v of verdicts) {
      rows.push(
        [`${v.op} ${formatBytes(v.bs)} +${v.memOffset}`, "CPU us/IO", say(v.cpuNsPerIo), range(v.direct.cpuNsPerIo, v.direct.cpuNsPerIoMin, v.direct.cpuNsPerIoMax, 1000, 1), range(v.bounce.cpuNsPerIo, v.bounce.cpuNsPerIoMin, v.bounce.cpuNsPerIoMax, 1000, 1)],
        ["", "MiB/s", say(v.mibPerSec), range(v.direct.mibPerSec, v.direct.mibPerSecMin, v.direct.mibPerSecMax, 1, 0), range(v.bounce.mibPerSec, v.bounce.mibPerSecMin, v.bounce.mibPerSecMax, 1, 0)],
      );
    }
    // Each column as wide as its widest cell: the verdict fits 80 columns.
    const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
    for (const row of rows) lines.push(`  ${row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]! + 2))).join("")}`);
    lines.push(
      report.results.some((r) => r.repeats < RUNS_FOR_A_FINDING)
        ? `  ~: not a finding: with fewer than ${RUNS_FOR_A_FINDING} runs a case nothing can be one (a rank test of the runs; --repeat 5 finds a clear change)`
        : `  ~: not a finding: a rank test of the two cases' runs gives p >= ${FINDING_P} (at most ${FINDING_P * 100}% false findings)`,
    );
  }
  const shown = new Set(table?.columns.map((c) => c.name) ?? []);
  if (shown.has("dmibs") || shown.has("dcpu")) {
    lines.push(
      "Δ: each bounced case against the direct case of the same op and size, at the same memory offset when the kernel " +
        "takes that directly, else the smallest one it does (--columns +vs shows which); (in parentheses): not a finding " +
        `(a rank test of the two cases' runs, p >= ${FINDING_P}; it needs ${RUNS_FOR_A_FINDING} runs each at least)`,
    );
  }
  if (shown.has("cpu") || shown.has("util")) {
    lines.push("CPU us/IO: the whole process's CPU time (user + system, every thread, io_uring workers included) per IO; cores: that CPU time over wall time");
  }
  const cached = report.results.filter(throughCache);
  if (cached.length > 0 && (table === null || shown.has("decision"))) {
    const how = cached.every((r) => r.pageCache.traced !== null) ? "the kernel's filemap and writeback tracepoints saw it" : "as cachestat or the filesystem shows";
    lines.push(`${PAGE_CACHE_MARK}: ${cached.length} case(s) the filesystem served through the page cache after all, not direct IO (${how}; pageCache in --json says how per case)`);
  }
  const repeats = Math.max(0, ...report.results.map((r) => r.repeats));
  if (repeats === 1) lines.push("one run per case (--repeat 1): no spread to judge differences by");
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}
