/**
 * `report`: a real bench run (and a baseline) becomes one self-contained HTML file, which a real
 * browser (headless Chromium) renders: every chart is there with one mark per case (points with
 * spread bars, latency percentiles, changes from the baseline), the decision maps have a cell
 * per offset and length and the seed rule's bounces at least the kernel rule's, the page logs no
 * error and fetches nothing, and a screenshot is taken. Skips, saying why, without Chromium.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCliIn, scratchDir } from "./helpers";

const chromium = Bun.which("chromium") ?? Bun.which("chromium-browser");
const why = chromium === null ? " (skipped: chromium is not installed; apt-get install chromium)" : "";

describe("the HTML report", () => {
  const dir = scratchDir("html-report");
  const run = join(dir, "run.json");
  const base = join(dir, "base.json");
  const html = join(dir, "report.html");
  const bench = (out: string) => runCliIn(dir, "bench", "--size", "4m", "--op", "read,write", "--bs", "4k,64k", "--mem-offset", "0,8", "--mode", "auto,direct", "--ios", "30", "--repeat", "2", "--format", "json", "--output", out);

  test("is one self-contained file: no script, nothing fetched, every section there", () => {
    expect(bench(base).code).toBe(0);
    expect(bench(run).code).toBe(0);
    const written = runCliIn(dir, "report", run, base, "--html", html);
    expect(written.code).toBe(0);
    const text = readFileSync(html, "utf8");
    expect(text).not.toMatch(/<script|<link|<img|@import|url\(\s*["']?http/i);
    expect(text.match(/https?:\/\/[^"'\s]+/g)?.filter((url) => url !== "http://www.w3.org/2000/svg") ?? []).toEqual([]);
    for (const id of ["throughput", "cpu", "latency", "comparison", "decision-map-kernel", "decision-map-seed"]) expect(text).toContain(`<svg id="${id}"`);
    // Never replaced without --force; bad input is exit 2.
    expect(runCliIn(dir, "report", run, "--html", html).code).toBe(2);
    expect(runCliIn(dir, "report", join(dir, "missing.json"), "--html", join(dir, "x.html")).code).toBe(2);
    expect(existsSync(join(dir, "x.html"))).toBe(false);
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
    expect(measured).toBeLessThan(doc.results.length); // forced direct at offset 8 was refused
    const browser = (...args: string[]) =>
      Bun.spawnSync([chromium!, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0", ...args, `file://${html}`], { timeout: 60_000 });
    const dumped = browser("--dump-dom");
    expect(dumped.exitCode).toBe(0);
    const dom = dumped.stdout.toString();
    const count = (svgId: string, pattern: RegExp) => {
      const start = dom.indexOf(`<svg id="${svgId}"`);
      const body = dom.slice(start, dom.indexOf("</svg>", start));
      return body.match(pattern)?.length ?? 0;
    };
    expect(count("throughput", /<g class="point">/g)).toBe(measured);
    expect(count("cpu", /<g class="point">/g)).toBe(measured);
    expect(count("latency", /<g class="percentile">/g)).toBe(4 * measured);
    expect(count("comparison", /<g class="change">/g)).toBe(2 * measured);
    const kernel = count("decision-map-kernel", /<rect class="cell"/g);
    expect(kernel).toBe(34 * 9);
    expect(count("decision-map-seed", /<rect class="cell"/g)).toBe(kernel);
    const bounced = (id: string) => count(id, /data-decision="(bounce|rmw|split)"/g);
    expect(bounced("decision-map-seed")).toBeGreaterThanOrEqual(bounced("decision-map-kernel"));
    // No console message (there is no script), no failed load (nothing is fetched).
    const log = dumped.stderr.toString();
    expect(log.split("\n").filter((line) => /CONSOLE|Uncaught|Failed to load resource|net::ERR/.test(line))).toEqual([]);
    const png = join(dir, "report.png");
    const shot = browser("--window-size=1100,2600", `--screenshot=${png}`);
    expect(shot.exitCode).toBe(0);
    expect(statSync(png).size).toBeGreaterThan(20_000);
  }, 120_000);
});
