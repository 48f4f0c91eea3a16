/**
 * `bounce-bench report`'s HTML: one self-contained file (inline SVG and CSS, no script, nothing
 * fetched) that shows a bench run at a glance:
 *
 *   throughput and CPU per IO against block size, one line per op, mode and memory offset, each
 *   point the median of the runs with a bar from the least to the most (log-scaled sizes)
 *   latency percentiles (p50, p90, p99, p99.9) per case, on a log scale
 *   the comparison with a baseline run, when given: per case the change of MiB/s and CPU per IO,
 *   hatched when within the noise
 *   the decision map of the run's disk: memory offset against IO length, coloured by what the
 *   planner decides under each rule set, so that what the reference's rule costs is visible
 *
 * Every chart is an `<svg>` with an id and a `<title>`; every point, bar and cell carries a
 * `<title>` with its numbers, which browsers show on hover.
 */
import type { DiskAlignment } from "../src/base/alignment-rules";
import { RULE_SETS, type RuleSet } from "../src/base/alignment-rules";
import type { Comparison } from "../src/bench/compare";
import { formatBytes } from "../src/base/value-parsers";
import type { BenchCaseResult } from "../src/bench/bench-results";
import { plan } from "../src/io/planner";
import { PagedRange } from "../src/memory/paged-range";

/** What a report is made of: the run's document (and a baseline's comparison, if any). */
export interface ReportInput {
  title: string;
  version: string;
  startedAt: string | null;
  host: Record<string, unknown>;
  options: Record<string, unknown>;
  results: BenchCaseResult[];
  alignment: DiskAlignment;
  comparison: Comparison | null;
  baseName: string | null;
}

const WIDTH = 720;
const HEIGHT = 300;
const MARGIN = { left: 64, right: 180, top: 24, bottom: 44 };
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];
const DECISION_COLORS: Record<string, string> = { direct: "#2ca02c", bounce: "#ff7f0e", rmw: "#d62728", split: "#9467bd", buffered: "#7f7f7f" };

export function htmlReport(input: ReportInput): string {
  const sections = [
    header(input),
    section("Throughput", "Median MiB/s per block size; bars from the least to the most of the runs.", lineChart("throughput", input.results, (r) => [r.mibPerSec, r.mibPerSecMin, r.mibPerSecMax], "MiB/s")),
    section("CPU per IO", "Median process CPU per IO (us); bars from the least to the most of the runs.", lineChart("cpu", input.results, (r) => [r.cpuNsPerIo / 1000, r.cpuNsPerIoMin / 1000, r.cpuNsPerIoMax / 1000], "CPU us/IO")),
    section("Latency", "p50, p90, p99 and p99.9 per case (us, log scale); cases the kernel refused have none.", latencyChart(input.results)),
    input.comparison === null ? "" : section(`Against ${escape(input.baseName ?? "the baseline")}`, "Change per case from the baseline, in percent; hatched: not a finding (a rank test of the runs, p >= 0.05).", comparisonChart(input.comparison)),
    section(
      "Decision map",
      `What the planner decides for one write of each length at each memory offset on this run's disk (memory ${input.alignment.memAlign}, blocks ${input.alignment.offsetAlign}), under each rule set: what the reference's rule (seed) bounces that the kernel's does not.`,
      RULE_SETS.map((rules) => decisionMap(input.alignment, rules)).join("\n") + decisionLegend(),
    ),
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escape(input.title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1000px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
.note { color: #555; } table.facts td { padding: 1px 12px 1px 0; vertical-align: top; }
svg { display: block; margin: 8px 0; } svg text { font: 11px system-ui, sans-serif; fill: #333; }
.axis line, .axis path { stroke: #888; } .grid line { stroke: #eee; }
</style>
</head>
<body>
${sections.join("\n")}
</body>
</html>
`;
}

function header(input: ReportInput): string {
  const host = input.host;
  const facts: [string, unknown][] = [
    ["tool", `bounce-bench ${input.version}`],
    ["started", input.startedAt ?? "unknown"],
    ["kernel", host.kernel],
    ["CPU", `${host.cpu} x${host.cpus}`],
    ["filesystem", host.filesystem],
    ["disk", host.scratch ? `scratch ${host.diskKind ?? "file"}` : host.disk],
    ["alignment", `memory ${input.alignment.memAlign}, offset ${input.alignment.offsetAlign}, read offset ${input.alignment.readOffsetAlign} (${input.alignment.source})`],
    ["guest memory", `${host.guestBacking ?? "?"}; bounce buffers on ${host.bounceHugePages ? "huge" : "4 KiB"} pages`],
    ["runs", `${input.options.repeat ?? 1} per case, ${input.options.runtimeSeconds !== null && input.options.runtimeSeconds !== undefined ? `${input.options.runtimeSeconds} s` : `${input.options.ios} IOs`} each`],
  ];
  return `<h1>${escape(input.title)}</h1>
<table class="facts">${facts.map(([k, v]) => `<tr><td>${escape(k)}</td><td>${escape(String(v ?? "unknown"))}</td></tr>`).join("")}</table>`;
}

function section(title: string, note: string, body: string): string {
  return `<h2>${escape(title)}</h2>\n<p class="note">${escape(note)}</p>\n${body}`;
}

/** A series per op, mode and memory offset: value [median, min, max] against block size. */
function lineChart(id: string, results: readonly BenchCaseResult[], value: (r: BenchCaseResult) => [number, number, number], unit: string): string {
  const measured = results.filter((r) => r.ios > 0);
  if (measured.length === 0) return `<svg id="${id}" width="${WIDTH}" height="40"><title>${unit}: no case completed</title><text x="8" y="24">no case completed</text></svg>`;
  const keyOf = (r: BenchCaseResult) => `${r.op} ${r.mode} +${r.memOffset}${r.shape === null ? "" : " sg"}`;
  // Grouped in one pass: a run of thousands of cases has about as many series.
  const series = new Map<string, BenchCaseResult[]>();
  for (const r of measured) {
    const key = keyOf(r);
    const points = series.get(key);
    if (points === undefined) series.set(key, [r]);
    else points.push(r);
  }
  const sizes = [...new Set(measured.map((r) => r.bs))].sort((a, b) => a - b);
  const top = largest(measured.map((r) => value(r)[2])) * 1.1 || 1;
  const x = logScale(sizes[0]!, sizes[sizes.length - 1]!, MARGIN.left, WIDTH - MARGIN.right);
  const y = (v: number) => HEIGHT - MARGIN.bottom - (v / top) * (HEIGHT - MARGIN.top - MARGIN.bottom);
  const parts: string[] = [axes(sizes.map((bs) => [x(bs), formatBytes(bs)]), niceTicks(0, top).map((t) => [y(t), format(t)]), unit, "block size")];
  [...series].forEach(([key, unsorted], i) => {
    const color = COLORS[i % COLORS.length]!;
    const points = unsorted.sort((a, b) => a.bs - b.bs);
    parts.push(`<polyline class="series" fill="none" stroke="${color}" stroke-width="1.5" points="${points.map((r) => `${x(r.bs).toFixed(1)},${y(value(r)[0]).toFixed(1)}`).join(" ")}"/>`);
    for (const r of points) {
      const [median, min, max] = value(r);
      parts.push(
        `<g class="point"><title>${escape(`${key} ${formatBytes(r.bs)}: ${format(median)} ${unit} (${format(min)} .. ${format(max)}, ${r.repeats} runs)`)}</title>` +
          `<line stroke="${color}" x1="${x(r.bs).toFixed(1)}" x2="${x(r.bs).toFixed(1)}" y1="${y(min).toFixed(1)}" y2="${y(max).toFixed(1)}"/>` +
          `<circle fill="${color}" r="3.5" cx="${x(r.bs).toFixed(1)}" cy="${y(median).toFixed(1)}"/></g>`,
      );
    }
    parts.push(legendItem(i, color, key));
  });
  return svg(id, `${unit} against block size`, HEIGHT, parts);
}

function latencyChart(results: readonly BenchCaseResult[]): string {
  const cases = results.filter((r) => r.latencyUs !== null);
  const rowHeight = 18;
  const height = MARGIN.top + MARGIN.bottom + cases.length * rowHeight;
  if (cases.length === 0) return `<svg id="latency" width="${WIDTH}" height="40"><title>latency: no case completed</title><text x="8" y="24">no case completed</text></svg>`;
  const all = cases.flatMap((r) => [r.latencyUs!.p50, r.latencyUs!.p999]).filter((v) => v > 0);
  const x = logScale(smallest(all) / 1.2, largest(all) * 1.2, 200, WIDTH - 40);
  const marks: [keyof NonNullable<BenchCaseResult["latencyUs"]>, string][] = [["p50", "#2ca02c"], ["p90", "#1f77b4"], ["p99", "#ff7f0e"], ["p999", "#d62728"]];
  const parts: string[] = [];
  const ticks = logTicks(smallest(all) / 1.2, largest(all) * 1.2);
  parts.push(`<g class="axis">${ticks.map((t) => `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${MARGIN.top}" y2="${height - MARGIN.bottom}" stroke-dasharray="2,3"/><text x="${x(t).toFixed(1)}" y="${height - MARGIN.bottom + 16}" text-anchor="middle">${format(t)}</text>`).join("")}<text x="${WIDTH - 40}" y="${height - 8}" text-anchor="end">us</text></g>`);
  cases.forEach((r, i) => {
    const cy = MARGIN.top + i * rowHeight + rowHeight / 2;
    const l = r.latencyUs!;
    parts.push(`<text x="8" y="${cy + 4}">${escape(`${r.op} ${formatBytes(r.bs)} +${r.memOffset} ${r.mode}`)}</text>`);
    parts.push(`<line stroke="#bbb" x1="${x(Math.max(l.p50, 0.001)).toFixed(1)}" x2="${x(Math.max(l.p999, 0.001)).toFixed(1)}" y1="${cy}" y2="${cy}"/>`);
    for (const [key, color] of marks) {
      parts.push(`<g class="percentile"><title>${escape(`${key}: ${format(l[key])} us`)}</title><circle fill="${color}" r="4" cx="${x(Math.max(l[key], 0.001)).toFixed(1)}" cy="${cy}"/></g>`);
    }
  });
  marks.forEach(([key, color], i) => parts.push(`<circle fill="${color}" r="4" cx="${220 + i * 70}" cy="10"/><text x="${228 + i * 70}" y="14">${key === "p999" ? "p99.9" : key}</text>`));
  return svg("latency", "latency percentiles per case", height, parts);
}

function comparisonChart(comparison: Comparison): string {
  const rowHeight = 18;
  const cases = comparison.cases;
  const height = MARGIN.top + MARGIN.bottom + cases.length * rowHeight;
  const changes = cases.flatMap((c) => [c.metrics.mibPerSec?.percent ?? 0, c.metrics.cpuNsPerIo?.percent ?? 0]);
  const span = Math.max(10, largest(changes.map(Math.abs))) * 1.1;
  const left = 260;
  const half = (WIDTH - left - 40) / 2;
  const x = (p: number) => left + half + (p / span) * (half / 2);
  const parts: string[] = [
    `<defs><pattern id="noise" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/><line x1="0" y1="0" x2="0" y2="6" stroke="#999" stroke-width="3"/></pattern></defs>`,
    `<line class="axis" stroke="#888" x1="${x(0)}" x2="${x(0)}" y1="${MARGIN.top}" y2="${height - MARGIN.bottom}"/>`,
    `<text x="${x(0)}" y="${height - 8}" text-anchor="middle">0%</text><text x="${x(-span)}" y="${height - 8}">-${format(span)}%</text><text x="${x(span)}" y="${height - 8}" text-anchor="end">+${format(span)}%</text>`,
  ];
  cases.forEach((c, i) => {
    const top = MARGIN.top + i * rowHeight;
    parts.push(`<text x="8" y="${top + 13}">${escape(c.name)}</text>`);
    const bars: [string, "mibPerSec" | "cpuNsPerIo", string][] = [["MiB/s", "mibPerSec", "#1f77b4"], ["CPU/IO", "cpuNsPerIo", "#d62728"]];
    bars.forEach(([label, key, color], j) => {
      const m = c.metrics[key];
      if (m === null) return;
      const from = Math.min(x(0), x(m.percent));
      const width = Math.max(1, Math.abs(x(m.percent) - x(0)));
      const verdict = m.regressed ? "REGRESSED" : m.improved ? "improved" : m.beyondNoise ? "beyond noise" : "within noise";
      parts.push(
        `<g class="change"><title>${escape(`${c.name} ${label}: ${m.percent >= 0 ? "+" : ""}${m.percent}% (${verdict})`)}</title>` +
          `<rect x="${from.toFixed(1)}" y="${top + 2 + j * 7}" width="${width.toFixed(1)}" height="6" fill="${m.beyondNoise ? color : "url(#noise)"}" stroke="${color}"/></g>`,
      );
    });
  });
  parts.push(`<rect x="${WIDTH - 170}" y="4" width="10" height="8" fill="#1f77b4"/><text x="${WIDTH - 156}" y="12">MiB/s</text><rect x="${WIDTH - 100}" y="4" width="10" height="8" fill="#d62728"/><text x="${WIDTH - 86}" y="12">CPU/IO</text>`);
  return svg("comparison", "change from the baseline per case", height, parts);
}

/** Memory offsets (0 .. 4095) against write lengths, coloured by the plan's decision under `rules`. */
function decisionMap(alignment: DiskAlignment, rules: RuleSet): string {
  // Every 128 bytes of the page, and two offsets a VMM meets: 8 (a header before the data) and 100.
  const offsets = Array.from({ length: 32 }, (_, i) => i * 128).concat([8, 100]).sort((a, b) => a - b);
  const lengths = [512, 1000, 2048, 4096, 8192, 16384, 65536, 131072, 1048576];
  const cell = 16;
  const left = 70;
  const top = 30;
  const height = top + lengths.length * cell + 50;
  const parts: string[] = [`<text x="${left}" y="16">--rules ${rules}</text>`];
  lengths.forEach((len, row) => {
    parts.push(`<text x="${left - 6}" y="${top + row * cell + 12}" text-anchor="end">${formatBytes(len)}</text>`);
    offsets.forEach((offset, column) => {
      const pages = Math.ceil((offset + len) / 4096);
      const decided = plan({ op: "write", mode: "auto", at: 0, segments: [new PagedRange(offset, len, Array.from({ length: pages }, (_, i) => i))], alignment, rules });
      parts.push(
        `<rect class="cell" data-decision="${decided.decision}" x="${left + column * cell}" y="${top + row * cell}" width="${cell - 1}" height="${cell - 1}" fill="${DECISION_COLORS[decided.decision] ?? "#000"}">` +
          `<title>${escape(`${formatBytes(len)} at memory offset ${offset}: ${decided.decision}${decided.copiedBytes > 0 ? `, ${decided.copiedBytes} bytes copied` : ""}`)}</title></rect>`,
      );
    });
  });
  offsets.forEach((offset, column) => {
    if (column % 4 === 0 && offset % 128 === 0) parts.push(`<text x="${left + column * cell + cell / 2}" y="${top + lengths.length * cell + 14}" text-anchor="middle">${offset}</text>`);
  });
  parts.push(`<text x="${left}" y="${top + lengths.length * cell + 34}">memory offset in the first page (bytes); rows: write length</text>`);
  return svg(`decision-map-${rules}`, `decisions under --rules ${rules}`, height, parts, left + offsets.length * cell + 20);
}

function decisionLegend(): string {
  const items = Object.entries(DECISION_COLORS).filter(([decision]) => decision !== "buffered");
  return `<svg id="decision-legend" width="${WIDTH}" height="24"><title>decision colours</title>${items
    .map(([decision, color], i) => `<rect x="${i * 90}" y="6" width="12" height="12" fill="${color}"/><text x="${i * 90 + 16}" y="16">${decision}</text>`)
    .join("")}</svg>`;
}

function svg(id: string, title: string, height: number, parts: string[], width = WIDTH): string {
  return `<svg id="${id}" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img"><title>${escape(title)}</title>\n${parts.join("\n")}\n</svg>`;
}

function axes(xTicks: [number, string][], yTicks: [number, string][], yLabel: string, xLabel: string): string {
  const bottom = HEIGHT - MARGIN.bottom;
  return (
    `<g class="grid">${yTicks.map(([y]) => `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}"/>`).join("")}</g>` +
    `<g class="axis"><line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${bottom}" y2="${bottom}"/><line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${bottom}"/>` +
    xTicks.map(([x, label]) => `<text x="${x.toFixed(1)}" y="${bottom + 16}" text-anchor="middle">${escape(label)}</text>`).join("") +
    yTicks.map(([y, label]) => `<text x="${MARGIN.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${escape(label)}</text>`).join("") +
    `<text x="${(MARGIN.left + WIDTH - MARGIN.right) / 2}" y="${HEIGHT - 6}" text-anchor="middle">${escape(xLabel)}</text>` +
    `<text x="14" y="${MARGIN.top + (bottom - MARGIN.top) / 2}" text-anchor="middle" transform="rotate(-90 14 ${MARGIN.top + (bottom - MARGIN.top) / 2})">${escape(yLabel)}</text></g>`
  );
}

function legendItem(index: number, color: string, label: string): string {
  const x = WIDTH - MARGIN.right + 16;
  const y = MARGIN.top + index * 16;
  return `<g class="legend"><line x1="${x}" x2="${x + 16}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="2"/><text x="${x + 22}" y="${y + 4}">${escape(label)}</text></g>`;
}

/** Pixels for values between `low` and `high` on a log scale (one value: the middle). */
function logScale(low: number, high: number, from: number, to: number): (v: number) => number {
  if (high <= low) return () => (from + to) / 2;
  const span = Math.log(high) - Math.log(low);
  return (v) => from + ((Math.log(v) - Math.log(low)) / span) * (to - from);
}

/** About five round ticks from `low` to `high`. */
function niceTicks(low: number, high: number): number[] {
  const raw = (high - low) / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let t = Math.ceil(low / step) * step; t <= high; t += step) ticks.push(t);
  return ticks;
}

/** Powers of ten (and their 2 and 5 multiples when few) between `low` and `high`. */
function logTicks(low: number, high: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(low)); e <= Math.ceil(Math.log10(high)); e++) {
    for (const m of [1, 2, 5]) {
      const t = m * 10 ** e;
      if (t >= low && t <= high) ticks.push(t);
    }
  }
  return ticks;
}

/** The largest and smallest of many values (spreading them into Math.max has an argument limit). */
function largest(values: readonly number[]): number {
  return values.reduce((a, b) => Math.max(a, b), -Infinity);
}

function smallest(values: readonly number[]): number {
  return values.reduce((a, b) => Math.min(a, b), Infinity);
}

function format(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

function escape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}
