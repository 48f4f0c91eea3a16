/**
 * `report`: a real bench run (and a baseline) becomes one self-contained HTML file, which a real
 * browser (headless Chromium) renders: the cost of bouncing leads, every chart is there with one
 * mark per case (verdict pairs, points per block size, latency percentiles, changes from the
 * baseline), the decision maps have a cell per offset and length and the seed rule's bounces at
 * least the kernel rule's; no two series of a chart share a colour, every quantitative axis
 * names its unit; the page logs no error and fetches nothing, and a screenshot is taken. Marks
 * are counted by their accessible role, as a screen reader would find them. Skips, saying why,
 * without Chromium.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, runCliIn, scratchDir } from "./helpers";

const chromium = Bun.which("chromium") ?? Bun.which("chromium-browser");
const why = chromium === null ? " (skipped: chromium is not installed; apt-get install chromium)" : "";

describe("the HTML report", () => {
  const dir = scratchDir("html-report");
  const run = join(dir, "run.json");
  const base = join(dir, "base.json");
  const html = join(dir, "report.html");
  const replay = join(dir, "replay.json");
  const bench = (out: string) => runCliIn(dir, "bench", "--size", "4m", "--op", "read,write", "--bs", "4k,64k", "--mem-offset", "0,200", "--mode", "auto,bounce,direct", "--ios", "30", "--repeat", "2", "--format", "json", "--output", out);

  test("is one self-contained file: no script, nothing fetched, every section there", () => {
    expect(bench(base).code).toBe(0);
    expect(bench(run).code).toBe(0);
    // A replayed trace: fio's own log of a random read-write job, its buffers 512 bytes into their pages.
    const trace = join(dir, "fio.trace");
    expect(runCliIn(dir, "trace", "convert", join(ROOT, "examples/fio-randrw.iolog"), "--from", "fio-iolog", "--mem-offset", "512", "--output", trace).code).toBe(0);
    const replayed = runCliIn(dir, "replay", trace, "--json");
    expect(replayed.code).toBe(0);
    writeFileSync(replay, replayed.stdout);
    const written = runCliIn(dir, "report", run, base, "--replay", replay, "--html", html);
    expect(written.code).toBe(0);
    const text = readFileSync(html, "utf8");
    expect(text).not.toMatch(/<script|<link|<img|@import|url\(\s*["']?http/i);
    const namespaces = ["http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"]; // names, never fetched
    expect(text.match(/https?:\/\/[^"'\s]+/g)?.filter((url) => !namespaces.includes(url)) ?? []).toEqual([]);
    const ids = ["cost-throughput", "cost-cpu", "cost-change", "throughput", "cpu", "latency", "comparison", "decision-map-kernel", "decision-map-seed", "replay-0-decisions", "replay-0-needless", "replay-0-refused"];
    for (const id of ids) expect(text).toContain(`<figure id="${id}"><svg`);
    expect(text.indexOf('<figure id="cost-throughput">')).toBeLessThan(text.indexOf('<figure id="throughput">')); // the answer first
    // Never replaced without --force; bad input is exit 2.
    expect(runCliIn(dir, "report", run, "--html", html).code).toBe(2);
    expect(runCliIn(dir, "report", join(dir, "missing.json"), "--html", join(dir, "x.html")).code).toBe(2);
    expect(existsSync(join(dir, "x.html"))).toBe(false);
    // A replay document that is not one, or breaks its schema, is bad input naming it.
    expect(runCliIn(dir, "report", run, "--replay", run, "--html", join(dir, "x.html")).stderr).toMatch(/--replay .*run\.json: not a replay document/);
    const broken = JSON.parse(replayed.stdout);
    broken.summary.rules[0].decisions.direct = "three";
    writeFileSync(join(dir, "broken-replay.json"), JSON.stringify(broken));
    const refused = runCliIn(dir, "report", run, "--replay", join(dir, "broken-replay.json"), "--html", join(dir, "x.html"));
    expect({ code: refused.code, err: refused.stderr }).toMatchObject({ code: 2 });
    expect(refused.stderr).toMatch(/summary\.rules\[0\]\.decisions\.direct: must be/);
    expect(existsSync(join(dir, "x.html"))).toBe(false);
  });

  test("a run with registered bounce buffers (--fixedbufs bounce) says so where it shows what bouncing costs, and names the engine's options", () => {
    const registered = join(dir, "registered.json");
    const out = join(dir, "registered.html");
    const ran = runCliIn(dir, "bench", "--size", "4m", "--op", "read", "--bs", "4k", "--mode", "direct,bounce", "--engine", "uring", "--qd", "4", "--fixedbufs", "bounce", "--ios", "30", "--repeat", "2", "--format", "json", "--output", registered);
    expect(ran.code).toBe(0);
    expect(runCliIn(dir, "report", registered, "--html", out).code).toBe(0);
    const text = readFileSync(out, "utf8");
    expect(text).toContain("Bounce buffers registered with io_uring (--fixedbufs bounce), guest pages not");
    expect(text).toMatch(/<td>engine<\/td><td>uring \(fixedbufs=bounce\), qd 4<\/td>/);
    // Without --fixedbufs, nothing is said of registration.
    expect(readFileSync(html, "utf8")).not.toContain("registered with io_uring");
  });

  test("a run that breaks the bench schema is bad input naming the field, exit 2, nothing written; an older schema says rerun", () => {
    const good = JSON.parse(readFileSync(run, "utf8"));
    const cases: [(doc: Record<string, any>) => void, string][] = [
      [(doc) => (doc.results[0].latencyUs = "fast"), "results[0].latencyUs: must be an object"],
      [(doc) => (doc.results[1].mibPerSecMax = null), "results[1].mibPerSecMax: must be a number"],
      [(doc) => delete doc.host.fileLocks, "host.fileLocks: is missing"],
      [(doc) => (doc.results[2].surprise = 1), "results[2].surprise: unknown field"],
      [(doc) => (doc.schemaVersion = 2), "a bench document of schema 2; report reads schema 3 (rerun bench)"],
    ];
    for (const [breakIt, message] of cases) {
      const doc = structuredClone(good);
      breakIt(doc);
      const path = join(dir, "broken.json");
      writeFileSync(path, JSON.stringify(doc));
      const out = join(dir, "broken.html");
      const result = runCliIn(dir, "report", path, "--html", out);
      expect({ message, code: result.code }).toEqual({ message, code: 2 });
      expect(result.stderr.startsWith(`bounce-bench: ${path}: ${message}`)).toBe(true);
      expect(result.stderr).toMatch(/^[^\n]+\n$/);
      expect(existsSync(out)).toBe(false);
    }
  });

  test.skipIf(chromium === null)(`renders in headless Chromium with every mark, logs no error, and is screenshotted${why}`, () => {
    const doc = JSON.parse(readFileSync(run, "utf8"));
    const measured = doc.results.filter((r: { ios: number }) => r.ios > 0).length;
    expect(measured).toBeGreaterThan(0);
    expect(measured).toBeLessThan(doc.results.length); // forced direct at offset 200 was refused
    const browser = (...args: string[]) =>
      Bun.spawnSync([chromium!, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0", ...args, `file://${html}`], { timeout: 60_000 });
    const dumped = browser("--dump-dom");
    expect(dumped.exitCode).toBe(0);
    const dom = dumped.stdout.toString();
    const figure = (id: string) => {
      const start = dom.indexOf(`<figure id="${id}">`);
      expect({ id, found: start >= 0 }).toEqual({ id, found: true });
      return dom.slice(start, dom.indexOf("</figure>", start));
    };
    const count = (id: string, pattern: RegExp) => figure(id).match(pattern)?.length ?? 0;
    const points = /aria-roledescription="point"/g;
    // Per op and block size one verdict pair (direct and forced bounce at offset 0): 2 ops x 2 sizes.
    expect(count("cost-throughput", points)).toBe(2 * 4);
    expect(count("cost-cpu", points)).toBe(2 * 4);
    expect(count("cost-change", points)).toBe(2 * 4); // MiB/s and CPU per IO per verdict
    expect(count("throughput", points)).toBe(measured);
    expect(count("cpu", points)).toBe(measured);
    expect(count("latency", points)).toBe(4 * measured);
    expect(count("comparison", points)).toBe(2 * measured);
    const cells = /aria-roledescription="rect mark"/g;
    const kernel = count("decision-map-kernel", cells);
    expect(kernel).toBe(35 * 9); // every 128 bytes, 8, 100 and the run's 200 (its 0 is among them), 9 lengths
    expect(count("decision-map-seed", cells)).toBe(kernel);
    // The replay: a bar per rule set and decision that has IOs, per rule set and kernel with needless copies, with refusals.
    const replayed = JSON.parse(readFileSync(replay, "utf8"));
    const bars = /aria-roledescription="bar"/g;
    const nonzero = (values: number[]) => values.filter((v) => v > 0).length;
    type Rules = { decisions: Record<string, number>; kernels: { needlessIos: number; refusedIos: number }[] };
    expect(count("replay-0-decisions", bars)).toBe(nonzero(replayed.summary.rules.flatMap((r: Rules) => ["direct", "bounce", "rmw", "split"].map((d) => r.decisions[d]!))));
    expect(count("replay-0-needless", bars)).toBe(nonzero(replayed.summary.rules.flatMap((r: Rules) => r.kernels.map((k) => k.needlessIos))));
    expect(count("replay-0-refused", bars)).toBe(nonzero(replayed.summary.rules.flatMap((r: Rules) => r.kernels.map((k) => k.refusedIos))));
    expect(count("replay-0-refused", bars)).toBeGreaterThan(0); // OpenVMM's 512-byte sectors on a 4 KiB disk
    const bounced = (id: string) => count(id, /aria-label="[^"]*decision: (bounce|rmw|split)[;"]/g);
    expect(bounced("decision-map-kernel")).toBeGreaterThan(0);
    expect(bounced("decision-map-seed")).toBeGreaterThanOrEqual(bounced("decision-map-kernel"));
    // Series told apart: in every colour legend, each entry its own colour.
    const legends = [...dom.matchAll(/<g[^>]*aria-label="(Symbol legend[^"]*color[^"]*)"[^>]*>([\s\S]*?)<\/g><\/g><\/g>/g)];
    expect(legends.length).toBeGreaterThan(5);
    for (const [, label, body] of legends) {
      const colours = [...body!.matchAll(/role-legend-symbol[\s\S]*?<path[^>]*?(?:fill|stroke)="(#[0-9a-fA-F]{6})"/g)].map((m) => m[1]!.toLowerCase());
      expect({ label, shared: colours.length - new Set(colours).size }).toEqual({ label, shared: 0 });
    }
    // Every quantitative axis says its unit.
    const axes = [...dom.matchAll(/aria-label="([XY]-axis[^"]*for a (?:linear|log) scale[^"]*)"/g)].map((m) => m[1]!);
    expect(axes.length).toBeGreaterThan(10);
    for (const axis of axes) expect({ axis, unit: /titled '[^']*\[[^\]]+\]'/.test(axis) }).toEqual({ axis, unit: true });
    // No console message (there is no script), no failed load (nothing is fetched).
    const log = dumped.stderr.toString();
    expect(log.split("\n").filter((line) => /CONSOLE|Uncaught|Failed to load resource|net::ERR/.test(line))).toEqual([]);
    const png = join(dir, "report.png");
    const shot = browser("--window-size=1100,2600", `--screenshot=${png}`);
    expect(shot.exitCode).toBe(0);
    expect(statSync(png).size).toBeGreaterThan(20_000);
  }, 120_000);
});
