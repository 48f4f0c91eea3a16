/**
 * `compare`: cases match by parameters; a change is a regression only when it is worse by more
 * than the threshold (in the metric's own direction) and beyond the noise of both runs'
 * repeats; exit 1 then, 0 otherwise, 2 on bad input. Judged on made-up runs whose numbers make
 * every branch tell, and on a real run compared with itself.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
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

  test("several runs a side: the test judges each run's figure, so drift between runs is noise and a change beyond it is found", () => {
    // Each run's repeats are tight (spread 1) but the runs drift by up to 30%: the drift of the
    // machine between invocations. Run by run, two drifting runs look different; by invocation
    // they are the same thing.
    const drifting = (mibs: number[]) => mibs.map((mib) => doc(result(0, mib, 1000)));
    const base = drifting([100, 130, 95, 115]);
    const same = drifting([110, 96, 128, 101]);
    const aa = compareRuns(base, same, 5);
    expect(aa).toMatchObject({ judgedBy: "invocations", invocations: { base: 4, new: 4 }, regressed: false });
    expect(aa.cases[0]!.metrics.mibPerSec).toMatchObject({ base: 107.5, new: 105.5, beyondNoise: false });
    expect(compareRuns(base[1]!, same[2]!, 5).cases[0]!.metrics.mibPerSec).toMatchObject({ beyondNoise: true }); // 130 against 128: run against run it is a finding
    // Every new run below every base run: the least p of 4 against 4 (2 / C(8, 4)).
    const worse = compareRuns(base, drifting([80, 70, 90, 75]), 5);
    expect(worse.cases[0]!.metrics.mibPerSec).toMatchObject({ base: 107.5, new: 77.5, beyondNoise: true, regressed: true });
    expect(worse.cases[0]!.metrics.mibPerSec!.p).toBeCloseTo(2 / 70, 4);
    expect(worse.cases[0]!.metrics.cpuNsPerIo).toMatchObject({ percent: 0, beyondNoise: false });
    // One run out of line is enough to make 4 against 4 noise (the next p is 4 / 70).
    expect(compareRuns(base, drifting([80, 70, 96, 75]), 5).cases[0]!.metrics.mibPerSec).toMatchObject({ beyondNoise: false, regressed: false });
  });

  test("several runs a side: a case compared needs every run of both sides; one run against several is refused", () => {
    const base = [doc(result(0, 100, 1000), result(8, 100, 1000)), doc(result(0, 100, 1000))];
    const fresh = [doc(result(0, 100, 1000), result(64, 100, 1000)), doc(result(0, 100, 1000), result(8, 100, 1000))];
    const comparison = compareRuns(base, fresh, 5);
    expect(comparison.cases.map((c) => c.name)).toEqual(["read 64k +0 auto sync qd1 x1"]);
    expect(comparison.onlyInBase).toEqual(["read 64k +8 auto sync qd1 x1"]);
    expect(comparison.onlyInNew).toEqual(["read 64k +64 auto sync qd1 x1", "read 64k +8 auto sync qd1 x1"]);
    expect(() => compareRuns(base[0]!, fresh, 5)).toThrow(/base has 1 run and the new side 2/);
    expect(() => compareRuns(base, [], 5)).toThrow(/each side needs a bench run/);
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

  test("a directory a side: its runs are judged by invocation", () => {
    const side = (name: string, mibs: number[]) => {
      mkdirSync(join(dir, name), { recursive: true });
      mibs.forEach((mib, i) => write(`${name}/${i}.json`, doc(result(0, mib, 1000))));
      return join(dir, name);
    };
    const base = side("base-runs", [100, 104, 98, 102]);
    const slower = side("slower-runs", [80, 84, 78, 82]);
    const run = runCliIn(dir, "compare", base, slower);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("-19.8% REGRESSED");
    expect(run.stdout).toContain("4 base and 4 new runs");
    expect(JSON.parse(runCliIn(dir, "compare", base, slower, "--json").stdout)).toMatchObject({ judgedBy: "invocations", invocations: { base: 4, new: 4 }, regressed: true });
    const one = runCliIn(dir, "compare", join(base, "0.json"), slower);
    expect(one.code).toBe(2);
    expect(one.stderr).toMatch(/^bounce-bench: compare: the base has 1 run and the new side 4: [^\n]+\n$/);
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
      [base, (mkdirSync(join(dir, "empty-dir"), { recursive: true }), join(dir, "empty-dir"))],
    ]) {
      const run = runCliIn(dir, "compare", ...args);
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.stderr).toMatch(/^bounce-bench: [^\n]+\n$/);
    }
  });

  test("the README's recipe for a verdict: runs made alternately into two directories, judged by run", () => {
    for (const name of ["alt-base", "alt-new"]) mkdirSync(join(dir, name));
    for (let i = 1; i <= 4; i++) {
      for (const [side, pages] of [["alt-base", "4k"], ["alt-new", "thp"]]) {
        const run = runCliIn(dir, "bench", "--size", "2m", "--bs", "64k", "--mem-offset", "8", "--mode", "bounce", "--ios", "20", "--repeat", "2", "--bounce-pages", pages!, "--format", "json", "--output", `${side}/${i}.json`);
        expect(run.code).toBe(0);
      }
    }
    const run = runCliIn(dir, "compare", "alt-base", "alt-new", "--json");
    expect([0, 1]).toContain(run.code); // whether huge pages made a difference here is the measurement's
    const comparison = JSON.parse(run.stdout);
    expect(comparison).toMatchObject({ judgedBy: "invocations", invocations: { base: 4, new: 4 }, onlyInBase: [], onlyInNew: [] });
    expect(comparison.cases.map((c: { name: string }) => c.name)).toEqual(["read 64k +8 bounce sync qd1 x1", "write 64k +8 bounce sync qd1 x1"]);
    expect(comparison.differences.some((d: string) => d.startsWith("options.bouncePages"))).toBe(true);
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
