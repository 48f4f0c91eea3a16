/**
 * `compare`: cases match by parameters; a change is a regression only when it is worse by more
 * than the threshold (in the metric's own direction) and beyond the noise of both runs'
 * repeats; exit 1 then, 0 otherwise, 2 on bad input. Judged on made-up runs whose numbers make
 * every branch tell, and on a real run compared with itself.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { benchDocument, compareRuns } from "../src/bench/compare";
import { runCliIn, scratchDir } from "./helpers";

const dir = scratchDir("compare");

/** A bench case with five runs spread evenly over `mib` +- `spread` MiB/s, and CPU per IO likewise. */
function result(memOffset: number, mib: number, cpu: number, spread = 1, extra: Record<string, unknown> = {}) {
  const steps = [-1, -0.5, 0, 0.5, 1];
  return {
    op: "read",
    bs: 65536,
    memOffset,
    shape: null,
    mode: "auto",
    engine: "sync",
    qd: 1,
    threads: 1,
    ios: 300,
    repeats: 5,
    mibPerSec: mib,
    mibPerSecMin: mib - spread,
    mibPerSecMax: mib + spread,
    iops: mib * 16,
    iopsMin: (mib - spread) * 16,
    iopsMax: (mib + spread) * 16,
    cpuNsPerIo: cpu,
    cpuNsPerIoMin: cpu - spread,
    cpuNsPerIoMax: cpu + spread,
    latencyUs: { p99: 100 },
    samples: steps.map((step) => ({ mibPerSec: mib + step * spread, iops: (mib + step * spread) * 16, cpuNsPerIo: cpu + step * spread })),
    ...extra,
  };
}
const doc = (...results: unknown[]) => benchDocument({ tool: "bounce-bench", schemaVersion: 3, command: "bench", host: { kernel: "6.18" }, options: { repeat: 3 }, results }, "made up");

describe("compareRuns", () => {
  test("worse beyond threshold and noise (a rank test of the runs) regresses, in each metric's direction; within noise or threshold does not", () => {
    const base = doc(result(0, 100, 1000), result(8, 100, 1000), result(64, 100, 1000), result(512, 100, 1000, 20));
    const fresh = doc(result(0, 80, 1000), result(8, 100, 1300), result(64, 97, 1000), result(512, 80, 1000, 20), result(1024, 5, 5));
    const comparison = compareRuns(base, fresh, 5);
    const by = (offset: number) => comparison.cases.find((c) => c.name.includes(` +${offset} `))!.metrics;
    expect(by(0).mibPerSec).toMatchObject({ percent: -20, beyondNoise: true, regressed: true }); // throughput down
    expect(by(8).cpuNsPerIo).toMatchObject({ percent: 30, beyondNoise: true, regressed: true }); // CPU up is worse
    expect(by(8).mibPerSec).toMatchObject({ regressed: false });
    expect(by(64).mibPerSec).toMatchObject({ percent: -3, beyondNoise: true, regressed: false }); // below the threshold
    expect(by(512).mibPerSec).toMatchObject({ percent: -20, beyondNoise: false, regressed: false }); // the runs overlap: p >= 0.05
    expect(by(0).mibPerSec!.p).toBeCloseTo(2 / 252, 4); // five runs a side, all apart: the least p there is
    expect(by(0).p99Us).toMatchObject({ regressed: false, beyondNoise: false }); // never judged
    expect(comparison.onlyInNew).toEqual(["read 64k +1024 auto sync qd1 x1"]);
    expect(comparison.regressed).toBe(true);
    expect(compareRuns(base, doc(result(0, 130, 700)), 5).cases[0]!.metrics.mibPerSec).toMatchObject({ improved: true, regressed: false });
  });

  test("cases match by their parameters; two scratch disks' paths are no difference, two named disks' are", () => {
    const at = (host: Record<string, unknown>) => benchDocument({ tool: "bounce-bench", schemaVersion: 3, command: "bench", host: { kernel: "6.18", ...host }, options: { repeat: 5 }, results: [result(0, 100, 1000)] }, "made up");
    const scratchA = at({ scratch: true, disk: "/tmp/bounce-bench-disk-a/disk.bin" });
    const scratchB = at({ scratch: true, disk: "/tmp/bounce-bench-disk-b/disk.bin" });
    expect(compareRuns(scratchA, scratchB, 5).differences).toEqual([]);
    expect(compareRuns(scratchA, scratchB, 5).cases).toHaveLength(1);
    expect(compareRuns(at({ scratch: false, disk: "/data/a.img" }), at({ scratch: false, disk: "/data/b.img" }), 5).differences).toEqual(['host.disk: "/data/a.img" vs "/data/b.img"']);
  });

  test("runs from before repeats (one run, no spread) never count as beyond noise; a refused case compares nothing", () => {
    const old = (mib: number) => ({ ...result(0, mib, 1000), repeats: undefined, mibPerSecMin: undefined, mibPerSecMax: undefined, samples: undefined });
    expect(compareRuns(doc(old(100)), doc(old(50)), 5).regressed).toBe(false);
    expect(compareRuns(doc(result(0, 100, 1000)), doc({ ...result(0, 0, 0), ios: 0 }), 5).cases[0]!.metrics.mibPerSec).toBeNull();
  });
});

describe("compare on the command line", () => {
  const write = (name: string, value: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, typeof value === "string" ? value : JSON.stringify(value));
    return path;
  };

  test("exit 1 on a regression, 0 without; --json carries every case", () => {
    const base = write("base.json", doc(result(0, 100, 1000)));
    const worse = write("worse.json", doc(result(0, 80, 1000)));
    const same = write("same.json", doc(result(0, 101, 1000)));
    const regressed = runCliIn(dir, "compare", base, worse);
    expect(regressed.code).toBe(1);
    expect(regressed.stdout).toContain("REGRESSED");
    expect(runCliIn(dir, "compare", base, same).code).toBe(0);
    expect(runCliIn(dir, "compare", base, worse, "--threshold", "25").code).toBe(0);
    const json = JSON.parse(runCliIn(dir, "compare", base, worse, "--json").stdout);
    expect(json).toMatchObject({ tool: "bounce-bench", command: "compare", regressed: true, threshold: 5 });
    expect(json.cases[0].metrics.mibPerSec).toMatchObject({ base: 100, new: 80, percent: -20 });
  });

  test("bad input is exit 2 with one line", () => {
    const base = write("b.json", doc(result(0, 100, 1000)));
    for (const args of [
      [base, join(dir, "missing.json")],
      [base, write("text.json", "not json")],
      [base, write("plan.json", { command: "plan", results: [] })],
      [base, write("other.json", doc({ ...result(8, 100, 1000), op: "write" }))],
      [base, write("broken.json", { results: [{ op: "read" }] })],
      [base, base, "--threshold", "ten"],
    ]) {
      const run = runCliIn(dir, "compare", ...args);
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.stderr).toMatch(/^bounce-bench: [^\n]+\n$/);
    }
  });

  test("a real run compared with itself: nothing changed, exit 0", () => {
    const out = join(dir, "real.json");
    expect(runCliIn(dir, "bench", "--size", "2m", "--bs", "4k", "--mem-offset", "0,8", "--ios", "30", "--repeat", "2", "--format", "json", "--output", out).code).toBe(0);
    const run = runCliIn(dir, "compare", out, out, "--json");
    expect(run.code).toBe(0);
    const comparison = JSON.parse(run.stdout);
    expect(comparison.cases).toHaveLength(8);
    for (const c of comparison.cases) for (const m of Object.values(c.metrics) as ({ percent: number } | null)[]) if (m !== null) expect(m.percent).toBe(0);
  });
});
