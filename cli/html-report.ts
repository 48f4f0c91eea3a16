/**
 * `bounce-bench report`'s HTML: one self-contained file (inline SVG and CSS, no script, nothing
 * fetched). Each chart is a Vega-Lite specification that Vega compiles and renders to static SVG
 * at report time, so scales, ticks, legends and layout are Vega's, not drawn by hand here. The
 * page leads with the answer the tool exists for:
 *
 *   what bouncing costs: per op and block size, direct IO against a forced bounce at the same
 *     memory offset (bench's verdict pairs), MiB/s and CPU per IO with the runs' spread, one
 *     panel each; then the change in both, with the rank test's verdict: a finding drawn solid,
 *     noise hollow
 *   throughput and CPU per IO against block size, a panel per op and mode, a line per offset
 *   latency percentiles per case
 *   the comparison with a baseline run, when given: per case the change, regressions marked,
 *     changes beyond the axis clipped to its edge and labelled with their value
 *   the decision map: memory offset against write length, per rule set
 *   replayed traces, when given (`replay --json`): per rule set the trace's IOs by decision,
 *     then per rule set and kernel the IOs copied needlessly and the IOs refused, and the
 *     shapes that copy most
 *
 * Every chart has at most 8 series, drawn in the Okabe-Ito palette (told apart with the common
 * kinds of colour blindness); an axis spanning more than a decade is logarithmic; every
 * quantitative axis names its unit. Each chart is a `<figure>` with an id; each mark carries its
 * numbers in its accessible label (`aria-label`), which is also what the tests count.
 */
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { DiskAlignment } from "../src/base/alignment-rules";
import { RULE_SETS, type RuleSet } from "../src/base/alignment-rules";
import { formatBytes } from "../src/base/value-parsers";
import type { BenchCaseResult } from "../src/bench/bench-results";
import type { Comparison } from "../src/bench/compare";
import { bounceVerdicts } from "../src/bench/verdicts";
import { uringOptionNames, type UringOptions } from "../src/io/engines";
import { plan } from "../src/io/planner";
import { PagedRange } from "../src/memory/paged-range";
import type { ReplayReport } from "../src/trace/replay-run";

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
  /** Replays to show (`replay --json` documents), each with the file it came from. */
  replays?: { name: string; report: ReplayReport }[];
}

/** Okabe and Ito's palette: 8 colours that stay apart under the common colour blindnesses. */
export const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
const MAX_SERIES = PALETTE.length;
const DECISIONS = ["direct", "bounce", "rmw", "split"];
const DECISION_COLORS = ["#009E73", "#E69F00", "#D55E00", "#CC79A7"];
/** The comparison's axis ends here (percent); a change beyond it is drawn at the edge with its value. */
const CLIP_PERCENT = 50;

const CONFIG = {
  font: "system-ui, sans-serif",
  range: { category: PALETTE },
  axis: { labelFontSize: 11, titleFontSize: 12, labelOverlap: true, labelLimit: 160 },
  legend: { labelFontSize: 11, titleFontSize: 12, titleLimit: 240, labelLimit: 240 },
  header: { labelFontSize: 12, titleFontSize: 12 },
  view: { stroke: "#ddd" },
};

export async function htmlReport(input: ReportInput): Promise<string> {
  const measured = input.results.filter((r) => r.ios > 0);
  const sections = [
    header(input),
    section(
      "What bouncing costs",
      "Per op and block size: direct IO against a forced bounce at the same memory offset (the only difference is the bounce); median of the runs, bar from the least to the most." +
        registeredNote(input.options.uring as UringOptions | undefined),
      await costCharts(measured),
    ),
    section("Throughput and CPU per IO", "Median of the runs per block size, bar from the least to the most; a panel per op and mode, a line per memory offset.", await sizeCharts(measured)),
    section("Latency", "p50, p90, p99 and p99.9 per case; cases the kernel refused have none.", await latencyChart(measured)),
    input.comparison === null
      ? ""
      : section(
          `Against ${input.baseName ?? "the baseline"}`,
          `Change per case from the baseline, in percent: solid a finding, hollow noise (the rank test, p >= 0.05); REGRESSED and improved as compare says them; changes beyond ±${CLIP_PERCENT}% drawn at the edge with their value.`,
          await comparisonChart(input.comparison),
        ),
    section(
      "Decision map",
      `What the planner decides for one write of each length at each memory offset on this run's disk (memory ${input.alignment.memAlign}, blocks ${input.alignment.offsetAlign}), under each rule set; the offsets the run measured are on the axis.`,
      (await Promise.all(RULE_SETS.map((rules) => decisionMap(input.alignment, rules, measured)))).join("\n"),
    ),
    ...(await Promise.all((input.replays ?? []).map((replay, i) => replaySection(replay.name, replay.report, i)))),
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escape(input.title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
.note { color: #555; } table.facts td { padding: 1px 12px 1px 0; vertical-align: top; }
figure { margin: 8px 0 16px; } figure svg { display: block; max-width: 100%; height: auto; }
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
    ["engine", `${String(input.options.engine ?? "?")}${uringText(input.options.uring as UringOptions | undefined)}, qd ${String(input.options.qd ?? "?")}`],
    ["runs", `${input.options.repeat ?? 1} per case, ${input.options.runtimeSeconds !== null && input.options.runtimeSeconds !== undefined ? `${input.options.runtimeSeconds} s` : `${input.options.ios} IOs`} each`],
  ];
  return `<h1>${escape(input.title)}</h1>
<table class="facts">${facts.map(([k, v]) => `<tr><td>${escape(k)}</td><td>${escape(String(v ?? "unknown"))}</td></tr>`).join("")}</table>`;
}

function uringText(uring: UringOptions | undefined): string {
  const names = uringOptionNames(uring);
  return names.length > 0 ? ` (${names.join(", ")})` : "";
}

/** What io_uring's registered buffers change in the bounce-against-direct comparison, if used. */
function registeredNote(uring: UringOptions | undefined): string {
  if (uring?.fixedBuffers !== true) return "";
  return uring.registeredMemory === "bounce"
    ? " Bounce buffers registered with io_uring (--fixedbufs bounce), guest pages not: bouncing into a registered pool against direct IO from unregistered guest pages."
    : " Guest pages and bounce buffers both registered with io_uring (--fixedbufs): both sides skip the page lookup per IO.";
}

function section(title: string, note: string, body: string): string {
  return `<h2>${escape(title)}</h2>\n<p class="note">${escape(note)}</p>\n${body}`;
}

/** A Vega-Lite chart rendered to SVG, in a figure with `id`. */
async function chart(id: string, spec: Record<string, unknown>): Promise<string> {
  // Vega-Lite and Vega print their warnings on the console; a report's problems are the tests' to find.
  const compiled = compile({ $schema: "https://vega.github.io/schema/vega-lite/v6.json", config: CONFIG, ...spec } as TopLevelSpec, { logger: vega.logger(vega.None) }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none", logLevel: vega.None });
  const svg = await view.toSVG();
  view.finalize();
  return `<figure id="${id}">${svg}</figure>`;
}

function empty(id: string, what: string): string {
  return `<figure id="${id}"><p class="note">${escape(what)}</p></figure>`;
}

/** Two metrics' colours, and a fill in them for a finding only (hollow marks are noise). */
const METRICS = ["MiB/s", "CPU per IO"];
const metricStroke = { field: "metric", type: "nominal", scale: { domain: METRICS, range: PALETTE.slice(0, 2) }, title: "metric (solid: a finding; hollow: noise)" };
function metricFill(findingField: string): Record<string, unknown> {
  return { condition: METRICS.map((metric, i) => ({ test: `datum.${findingField} == 'finding' && datum.metric == '${metric}'`, value: PALETTE[i] })), value: "transparent" };
}

/** A scale that is logarithmic when `values` span more than a decade. */
function scaleFor(values: readonly number[]): { type: "log" | "linear"; zero?: boolean } {
  const positive = values.filter((v) => v > 0);
  if (positive.length === 0) return { type: "linear" };
  return Math.max(...positive) / Math.min(...positive) > 10 && positive.length === values.length ? { type: "log" } : { type: "linear", zero: true };
}

/** The verdict pairs as small multiples, then the change of each with its verdict. */
async function costCharts(measured: readonly BenchCaseResult[]): Promise<string> {
  const verdicts = bounceVerdicts(measured);
  if (verdicts.length === 0) return empty("cost", "No forced bounce next to a direct case at the same offset in this run (bench --mode auto,bounce at an offset the disk takes directly gives one).");
  const panel = (v: (typeof verdicts)[number]) => `${v.op} ${formatBytes(v.bs)} +${v.memOffset}`;
  const panels = verdicts.map(panel);
  const pairs = (metric: "mib" | "cpu") =>
    verdicts.flatMap((v) =>
      (["direct", "bounce"] as const).map((kind) => {
        const side = v[kind];
        const [median, min, max] = metric === "mib" ? [side.mibPerSec, side.mibPerSecMin, side.mibPerSecMax] : [side.cpuNsPerIo / 1000, side.cpuNsPerIoMin / 1000, side.cpuNsPerIoMax / 1000];
        return { panel: panel(v), kind, median, min, max };
      }),
    );
  const smallMultiples = (id: string, metric: "mib" | "cpu", title: string) =>
    chart(id, {
      data: { values: pairs(metric) },
      facet: { column: { field: "panel", type: "nominal", sort: panels, title: null } },
      spec: {
        width: 90,
        height: 140,
        layer: [
          { mark: { type: "rule", strokeWidth: 2 }, encoding: { x: { field: "kind", type: "nominal", sort: ["direct", "bounce"], title: null, axis: { labelAngle: 0 } }, y: { field: "min", type: "quantitative", title }, y2: { field: "max" }, color: { field: "kind", type: "nominal", sort: ["direct", "bounce"], title: null } } },
          {
            mark: { type: "point", filled: true, size: 70 },
            encoding: {
              x: { field: "kind", type: "nominal", sort: ["direct", "bounce"], axis: { labelAngle: 0 } },
              y: { field: "median", type: "quantitative", title },
              color: { field: "kind", type: "nominal", sort: ["direct", "bounce"], title: null },
              tooltip: [{ field: "panel" }, { field: "kind" }, { field: "median", format: ".1f" }, { field: "min", format: ".1f" }, { field: "max", format: ".1f" }],
            },
          },
        ],
      },
      resolve: { scale: { y: "independent" } },
    });
  const changes = verdicts.flatMap((v) =>
    (["mibPerSec", "cpuNsPerIo"] as const).map((key) => ({ case: panel(v), metric: key === "mibPerSec" ? "MiB/s" : "CPU per IO", percent: v[key].percent, shown: v[key].percent, label: "", finding: v[key].beyondNoise ? ("finding" as const) : ("noise" as const), p: v[key].p })),
  );
  const costChange = await changesChart("cost-change", changes, { cases: panels, caseTitle: "case (op, block size, memory offset)", valueTitle: "bounce against direct [%]", step: 90, labelAngle: -30 });
  return [await smallMultiples("cost-throughput", "mib", "throughput [MiB/s]"), await smallMultiples("cost-cpu", "cpu", "CPU per IO [us]"), costChange].join("\n");
}

/** Throughput and CPU per IO against block size: a panel per op and mode, a line per memory offset (8 at most a chart). */
async function sizeCharts(measured: readonly BenchCaseResult[]): Promise<string> {
  if (measured.length === 0) return empty("throughput", "No case completed.") + empty("cpu", "");
  const offsets = [...new Set(measured.map((r) => r.memOffset))].sort((a, b) => a - b);
  const groups: number[][] = [];
  for (let i = 0; i < offsets.length; i += MAX_SERIES) groups.push(offsets.slice(i, i + MAX_SERIES));
  const out: string[] = [];
  for (const [metric, unit] of [
    ["throughput", "throughput [MiB/s]"],
    ["cpu", "CPU per IO [us]"],
  ] as const) {
    for (const [g, group] of groups.entries()) {
      const rows = measured
        .filter((r) => group.includes(r.memOffset))
        .map((r) => {
          const [median, min, max] = metric === "throughput" ? [r.mibPerSec, r.mibPerSecMin, r.mibPerSecMax] : [r.cpuNsPerIo / 1000, r.cpuNsPerIoMin / 1000, r.cpuNsPerIoMax / 1000];
          return { op: r.op, mode: r.mode, offset: `+${r.memOffset}`, bs: r.bs, size: formatBytes(r.bs), median, min, max, decision: r.decision };
        });
      const sizes = [...new Set(rows.map((r) => r.bs))].sort((a, b) => a - b);
      const xScale = scaleFor(sizes);
      const x = { field: "bs", type: "quantitative", title: "block size [bytes]", scale: xScale, axis: { values: sizes, labelExpr: labelBytesExpr(), grid: false } };
      const y = { field: "median", type: "quantitative", title: unit, scale: scaleFor(rows.flatMap((r) => [r.min, r.max])) };
      const color = { field: "offset", type: "nominal", sort: group.map((o) => `+${o}`), title: "memory offset [bytes]" };
      out.push(
        await chart(g === 0 ? metric : `${metric}-${g + 1}`, {
          data: { values: rows },
          facet: { row: { field: "op", type: "nominal", title: null }, column: { field: "mode", type: "nominal", title: null } },
          spec: {
            width: 220,
            height: 150,
            layer: [
              { mark: { type: "line", point: false }, encoding: { x, y, color } },
              { mark: { type: "rule" }, encoding: { x, y: { field: "min", type: "quantitative", title: unit }, y2: { field: "max" }, color } },
              { mark: { type: "point", filled: true }, encoding: { x, y, color, tooltip: [{ field: "op" }, { field: "mode" }, { field: "offset" }, { field: "size" }, { field: "decision" }, { field: "median", format: ".2f" }, { field: "min", format: ".2f" }, { field: "max", format: ".2f" }] } },
            ],
          },
          resolve: { scale: { y: "shared" } },
        }),
      );
    }
  }
  return out.join("\n");
}

/** Vega's expression for a byte count as `4k`, `1m` (`formatBytes`). */
function labelBytesExpr(): string {
  return "datum.value >= 1073741824 && datum.value % 1073741824 == 0 ? (datum.value / 1073741824) + 'g' : datum.value >= 1048576 && datum.value % 1048576 == 0 ? (datum.value / 1048576) + 'm' : datum.value >= 1024 && datum.value % 1024 == 0 ? (datum.value / 1024) + 'k' : datum.value";
}

async function latencyChart(measured: readonly BenchCaseResult[]): Promise<string> {
  const rows = measured
    .filter((r) => r.latencyUs !== null)
    .flatMap((r) =>
      (["p50", "p90", "p99", "p999"] as const).map((key) => ({
        case: `${r.op} ${formatBytes(r.bs)} +${r.memOffset} ${r.mode}`,
        percentile: key === "p999" ? "p99.9" : key,
        us: r.latencyUs![key],
      })),
    );
  if (rows.length === 0) return empty("latency", "No case completed.");
  const cases = [...new Set(rows.map((r) => r.case))];
  return chart("latency", {
    data: { values: rows },
    width: Math.max(320, 22 * cases.length),
    height: 220,
    mark: { type: "point", filled: true, size: 40 },
    encoding: {
      x: { field: "case", type: "nominal", sort: cases, title: "case (op, block size, memory offset, mode)", axis: { labelAngle: -60, labelOverlap: false } },
      y: { field: "us", type: "quantitative", title: "latency [us]", scale: scaleFor(rows.map((r) => r.us)) },
      color: { field: "percentile", type: "nominal", sort: ["p50", "p90", "p99", "p99.9"], title: "percentile" },
      tooltip: [{ field: "case" }, { field: "percentile" }, { field: "us", format: ".1f" }],
    },
  });
}

async function comparisonChart(comparison: Comparison): Promise<string> {
  const rows = comparison.cases.flatMap((c) =>
    (["mibPerSec", "cpuNsPerIo"] as const)
      .filter((key) => c.metrics[key] !== null)
      .map((key) => {
        const change = c.metrics[key]!;
        const clipped = Math.max(-CLIP_PERCENT, Math.min(CLIP_PERCENT, change.percent));
        return {
          case: c.name.split(" ").slice(0, 4).join(" "),
          metric: key === "mibPerSec" ? "MiB/s" : "CPU per IO",
          percent: change.percent,
          shown: clipped,
          label: clipped === change.percent ? "" : `${change.percent > 0 ? "+" : ""}${change.percent.toFixed(0)}%`,
          verdict: change.regressed ? "REGRESSED" : change.improved ? "improved" : change.beyondNoise ? "finding below the threshold" : "noise",
          finding: change.beyondNoise ? ("finding" as const) : ("noise" as const),
          p: change.p,
        };
      }),
  );
  if (rows.length === 0) return empty("comparison", "No case in common has figures to compare.");
  return changesChart("comparison", rows, {
    cases: [...new Set(rows.map((r) => r.case))],
    caseTitle: "case (op, block size, memory offset, mode)",
    valueTitle: "change from the baseline [%]",
    step: 26,
    labelAngle: -60,
    domain: [-CLIP_PERCENT, CLIP_PERCENT],
    shape: { field: "verdict", type: "nominal", scale: { domain: ["REGRESSED", "improved", "finding below the threshold", "noise"], range: ["triangle-down", "triangle-up", "circle", "circle"] }, title: "compare says" },
  });
}

/** One change a row. */
interface ChangeRow {
  case: string;
  metric: string;
  /** The change in percent, and where it is drawn (at the axis's edge when beyond it, `label` then saying its value). */
  percent: number;
  shown: number;
  label: string;
  finding: "finding" | "noise";
  p: number | null;
  verdict?: string;
}

/**
 * Changes per case around a zero line, a point per metric in the metric's colour: solid a
 * finding, hollow noise; `shape` marks what compare says; `label` names a clipped change.
 */
function changesChart(
  id: string,
  rows: readonly ChangeRow[],
  how: { cases: string[]; caseTitle: string; valueTitle: string; step: number; labelAngle: number; domain?: [number, number]; shape?: Record<string, unknown> },
): Promise<string> {
  const x = { field: "case", type: "nominal", sort: how.cases, title: how.caseTitle, axis: { labelAngle: how.labelAngle, labelOverlap: false } };
  const y = { field: "shown", type: "quantitative", title: how.valueTitle, ...(how.domain === undefined ? {} : { scale: { domain: how.domain } }) };
  const xOffset = { field: "metric", type: "nominal" };
  return chart(id, {
    data: { values: rows },
    width: Math.max(280, how.step * how.cases.length),
    height: 220,
    layer: [
      { mark: { type: "rule", color: "#888" }, encoding: { y: { datum: 0, type: "quantitative" } } },
      {
        mark: { type: "point", size: 75, strokeWidth: 2, filled: false },
        encoding: {
          x,
          xOffset,
          y,
          stroke: metricStroke,
          fill: metricFill("finding"),
          ...(how.shape === undefined ? {} : { shape: how.shape }),
          tooltip: [{ field: "case" }, { field: "metric" }, { field: "percent", format: "+.1f" }, { field: "p", format: ".4f" }, { field: how.shape === undefined ? "finding" : "verdict" }],
        },
      },
      { mark: { type: "text", dy: -10, fontSize: 10 }, encoding: { x, xOffset, y, text: { field: "label" } } },
    ],
  });
}

/** Memory offsets (0 .. 4095) against write lengths, coloured by the plan's decision under `rules`. */
async function decisionMap(alignment: DiskAlignment, rules: RuleSet, measured: readonly BenchCaseResult[]): Promise<string> {
  // Every 128 bytes of the page, two offsets a VMM meets (8: a header before the data; 100), and
  // every offset the run measured.
  const measuredOffsets = [...new Set(measured.map((r) => r.memOffset))];
  const offsets = [...new Set([...Array.from({ length: 32 }, (_, i) => i * 128), 8, 100, ...measuredOffsets])].sort((a, b) => a - b);
  const lengths = [512, 1000, 2048, 4096, 8192, 16384, 65536, 131072, 1048576];
  const rows = lengths.flatMap((len) =>
    offsets.map((offset) => {
      const pages = Math.ceil((offset + len) / 4096);
      const decided = plan({ op: "write", mode: "auto", at: 0, segments: [new PagedRange(offset, len, Array.from({ length: pages }, (_, i) => i))], alignment, rules });
      return { offset, length: formatBytes(len), decision: decided.decision, copied: decided.copiedBytes };
    }),
  );
  const ticks = [...new Set([...offsets.filter((o) => o % 512 === 0), ...measuredOffsets])].sort((a, b) => a - b);
  return chart(`decision-map-${rules}`, {
    title: `--rules ${rules}`,
    data: { values: rows },
    mark: { type: "rect", stroke: "white", strokeWidth: 0.5 },
    encoding: {
      x: { field: "offset", type: "ordinal", sort: offsets, title: "memory offset in the first page [bytes]", axis: { values: ticks, labelAngle: 0 } },
      y: { field: "length", type: "ordinal", sort: lengths.map(formatBytes), title: "write length [bytes]" },
      color: { field: "decision", type: "nominal", scale: { domain: DECISIONS, range: DECISION_COLORS }, title: "decision" },
      tooltip: [{ field: "length" }, { field: "offset" }, { field: "decision" }, { field: "copied" }],
    },
    width: { step: 14 },
    height: { step: 16 },
  });
}

/**
 * A replayed trace: its IOs by decision per rule set; per rule set and kernel, the IOs copied
 * needlessly (the kernel takes them as they are) and refused (the rule set is unsound there);
 * and the shapes that copy most.
 */
async function replaySection(name: string, replay: ReplayReport, index: number): Promise<string> {
  const s = replay.summary;
  const rules = s.rules.map((r) => r.rules);
  const decisions = s.rules.flatMap((r) => DECISIONS.map((decision) => ({ rules: r.rules, decision, ios: r.decisions[decision as keyof typeof r.decisions] })).filter((d) => d.ios > 0));
  const kernels = replay.kernels.map((k) => k.name);
  const byKernel = (pick: "needlessIos" | "refusedIos") => s.rules.flatMap((r) => r.kernels.map((k) => ({ rules: r.rules, kernel: k.kernel, ios: k[pick] })).filter((d) => d.ios > 0));
  const bars = (id: string, values: Record<string, unknown>[], what: string) =>
    values.length === 0
      ? empty(id, `No IO ${what} under any rule set and kernel.`)
      : chart(id, {
          data: { values },
          width: 420,
          mark: { type: "bar" },
          encoding: {
            y: { field: "rules", type: "nominal", sort: rules, title: "rule set" },
            yOffset: { field: "kernel", type: "nominal", sort: kernels },
            x: { field: "ios", type: "quantitative", title: `IOs ${what} [IOs]`, axis: { tickMinStep: 1, format: "d" } },
            color: { field: "kernel", type: "nominal", sort: kernels, scale: { domain: kernels, range: PALETTE.slice(0, kernels.length) }, title: "kernel" },
            tooltip: [{ field: "rules" }, { field: "kernel" }, { field: "ios" }],
          },
        });
  const shapes = s.rules.find((r) => r.topShapes.length > 0);
  const source = replay.header.synthetic === null ? `captured by ${replay.header.captured.by}${replay.header.kernel === null ? "" : ` on ${replay.header.kernel.release}`}` : `synthetic (${replay.header.synthetic.from}: ${replay.header.synthetic.memory})`;
  return [
    section(
      `Replay of ${name}`,
      `${s.ios} IOs (${s.reads} reads, ${s.writes} writes), ${source}; judged on ${replay.disk.from} (memory ${replay.disk.alignment.memAlign}, blocks ${replay.disk.alignment.offsetAlign}). How each rule set sends them, then per kernel the IOs it copied that the kernel takes as they are, and the IOs it sends that the kernel refuses.`,
      [
        await chart(`replay-${index}-decisions`, {
          data: { values: decisions },
          width: 420,
          mark: { type: "bar" },
          encoding: {
            y: { field: "rules", type: "nominal", sort: rules, title: "rule set" },
            x: { field: "ios", type: "quantitative", stack: "zero", title: "IOs [IOs]", axis: { tickMinStep: 1, format: "d" } },
            color: { field: "decision", type: "nominal", sort: DECISIONS, scale: { domain: DECISIONS, range: DECISION_COLORS }, title: "decision" },
            tooltip: [{ field: "rules" }, { field: "decision" }, { field: "ios" }],
          },
        }),
        await bars(`replay-${index}-needless`, byKernel("needlessIos"), "copied needlessly"),
        await bars(`replay-${index}-refused`, byKernel("refusedIos"), "refused"),
        shapes === undefined
          ? ""
          : `<table class="facts" id="replay-${index}-shapes"><tr><td>IOs</td><td>shapes that copy most under ${escape(shapes.rules)}</td></tr>${shapes.topShapes.map((shape) => `<tr><td>${shape.ios}</td><td>${escape(shape.shape)}</td></tr>`).join("")}</table>`,
      ].join("\n"),
    ),
  ].join("\n");
}

function escape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}
