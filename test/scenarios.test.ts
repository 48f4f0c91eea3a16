/**
 * The repro corpus: every file in scenarios/ is a user-facing reproduction, and each must
 * pass here. Also: the files match the shipped JSON Schema, a wrong expectation fails with a
 * useful message (exit 1), and a malformed file names the bad field (exit 2).
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import Ajv2020 from "ajv/dist/2020";
import { parseScenarioText } from "../src/scenario/format";
import { parseGpnList } from "../src/base/value-parsers";
import { runScenarioFile } from "../src/scenario/run";
import { scratchDiskUnavailable } from "../src/host/scratch-disks";
import { ROOT, runCliIn, runnableScenarios, scratchDir } from "./helpers";

const CORPUS = join(ROOT, "scenarios");
const files = readdirSync(CORPUS).filter((name) => name.endsWith(".json")).sort();
const schema = JSON.parse(readFileSync(join(ROOT, "schema/scenario.schema.json"), "utf8"));
const validate = new Ajv2020({ allErrors: true, strict: false }).compile(schema);
const dir = scratchDir("scenarios");

describe("the corpus", () => {
  test("covers what it promises (at least the reference's defects and the listed bug classes)", () => {
    expect(files.length).toBeGreaterThanOrEqual(16);
  });

  for (const file of files) {
    const path = join(CORPUS, file);
    const scenario = parseScenarioText(readFileSync(path, "utf8"), path);
    const unavailable = scratchDiskUnavailable(scenario.diskKind);
    test.skipIf(unavailable !== null)(`${file}${unavailable === null ? "" : ` (skipped: disk kind ${scenario.diskKind} ${unavailable})`}`, async () => {
      const json = JSON.parse(readFileSync(path, "utf8"));
      expect(validate(json) ? [] : validate.errors).toEqual([]);
      expect(json.expected.length).toBeGreaterThan(0);
      expect(json.buggy.length).toBeGreaterThan(0);
      const result = await runScenarioFile(path);
      const failed = result.steps.filter((step) => !step.passed).map((step) => `step ${step.index} ${step.step}: ${step.detail}`);
      expect(failed).toEqual([]);
      expect(result.passed).toBe(true);
    });
  }
});

describe("the 4 KiB-sector scenarios on a real 4 KiB-sector disk (a loop device) instead of the simulated one", () => {
  const loop = scratchDiskUnavailable("loop");
  const simulated = files.filter((file) => parseScenarioText(readFileSync(join(CORPUS, file), "utf8"), file).diskAlign === 4096);
  test("there are such scenarios", () => expect(simulated.length).toBeGreaterThanOrEqual(3));
  for (const file of simulated) {
    test.skipIf(loop !== null)(`${file}${loop === null ? "" : ` (skipped: disk kind loop ${loop})`}`, async () => {
      const result = await runScenarioFile(join(CORPUS, file), { disk: { kind: "loop", sector: 4096 } });
      const failed = result.steps.filter((step) => !step.passed).map((step) => `step ${step.index} ${step.step}: ${step.detail}`);
      expect(failed).toEqual([]);
    });
  }
});

describe("repro on the command line", () => {
  const { runnable, unavailable } = runnableScenarios();
  if (unavailable.length > 0) console.log(`repro on the command line: the corpus without ${unavailable.join(", ")}; a directory of them all needs root`);
  test(`a directory runs every scenario: exit 0, a table per scenario${unavailable.length > 0 ? " (here: the runnable files, listed)" : ""}`, () => {
    const result = runCliIn(dir, "repro", ...(unavailable.length === 0 ? [CORPUS] : runnable));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`${runnable.length} of ${runnable.length} scenarios passed`);
  });

  test("a wrong expectation exits 1 and says what differed, and where misplaced bytes came from", () => {
    const scenario = JSON.parse(readFileSync(join(CORPUS, "descriptor-boundary-in-sector-write.json"), "utf8"));
    scenario.steps[2].expect.decision = "direct"; // it bounces
    scenario.steps[3].seg = ["1@512+3584", "2@0+512"]; // compare with the wrong page
    const path = join(dir, "wrong.json");
    writeFileSync(path, JSON.stringify(scenario));
    const result = runCliIn(dir, "repro", path, "--json");
    expect(result.code).toBe(1);
    const steps = JSON.parse(result.stdout).scenarios[0].steps;
    expect(steps[2]).toMatchObject({ passed: false, decision: "bounce" });
    expect(steps[2].detail).toContain("decision bounce, expected direct");
    expect(steps[3].passed).toBe(false);
    expect(steps[3].detail).toContain("first difference at byte 1 (disk offset 1)");
    expect(steps[3].detail).toContain("stamped 0x201 (expected 0x1201)");
  });

  test("a malformed file names the bad field and exits 2; nothing runs", () => {
    const cases: [unknown, string][] = [
      [{ steps: [] }, "name: is missing"],
      [{ name: "n", expected: "e", buggy: "b", guest: { size: "64k" }, disk: { size: "1M" }, steps: [{ io: "write", seg: ["0", "0@@1"], at: 0 }] }, "steps[0].seg[1]:"],
      [{ name: "n", expected: "e", buggy: "b", guest: { size: "64k" }, disk: { size: "1M" }, steps: [{ fill: "guest", gpns: "0", patern: "stamp" }] }, "steps[0].patern: unknown field"],
      [{ name: "n", expected: "e", buggy: "b", guest: { size: "5000" }, disk: { size: "1M" }, steps: [{ probe: "disk" }] }, "guest.size: 5000 is not a whole number of 4096-byte pages"],
      [{ name: "n", expected: "e", buggy: "b", guest: { size: "64k" }, disk: { size: "1M", align: 3000 }, steps: [{ probe: "disk" }] }, "disk.align: 3000 is not a power of two"],
      [{ name: "n", expected: "e", buggy: "b", guest: { size: "64k" }, disk: { size: "1M" }, steps: [{ io: "write", plan: "read", gpns: "0" }] }, "steps[0]: a step has exactly one of"],
      [{ name: "n", expected: "e", buggy: "b", guest: { size: "64k" }, disk: { size: "1M" }, steps: [{ budget: { pages: 4 }, actions: [{ release: "x" }] }] }, 'steps[0].actions[0].release: no earlier acquire is named "x"'],
    ];
    for (const [json, fragment] of cases) {
      const path = join(dir, "malformed.json");
      writeFileSync(path, JSON.stringify(json));
      const result = runCliIn(dir, "repro", path);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^bounce-bench: [^\n]+\n$/);
      expect(result.stderr).toContain(fragment);
    }
    writeFileSync(join(dir, "broken.json"), "{ not json");
    expect(runCliIn(dir, "repro", join(dir, "broken.json")).stderr).toContain("not valid JSON");
    expect(runCliIn(dir, "repro", join(dir, "missing.json")).code).toBe(2);
  });

  test("the parser and the JSON Schema agree on a malformed file", () => {
    const bad = { name: "n", expected: "e", buggy: "b", guest: { size: "64k" }, disk: { size: "1M" }, steps: [{ fill: "guest", gpns: "0", pattern: "plaid" }] };
    expect(validate(bad)).toBe(false);
    expect(() => parseScenarioText(JSON.stringify(bad), "x.json")).toThrow('steps[0].pattern: "plaid" is not one of zero, random, stamp');
  });
});

describe("one definition of the shape: the schema", () => {
  /** Every place in a document, as [path, parent, key]. */
  function places(value: unknown, path = ""): [string, Record<string, unknown> | unknown[], string | number][] {
    if (typeof value !== "object" || value === null) return [];
    const entries: [string | number, unknown][] = Array.isArray(value) ? value.map((item, i) => [i, item]) : Object.entries(value);
    return entries.flatMap(([key, child]) => {
      const childPath = typeof key === "number" ? `${path}[${key}]` : path === "" ? key : `${path}.${key}`;
      return [[childPath, value as Record<string, unknown>, key] as [string, Record<string, unknown> | unknown[], string | number], ...places(child, childPath)];
    });
  }

  test("every structural change to a corpus file (a field dropped, added, or of another JSON type) is judged alike by the schema and the parser", () => {
    // What a schema cannot say: values that must fit the scenario's own sizes, sizes that must be
    // whole pages or sectors (a size may be a string), and fields that depend on each other.
    const SEMANTIC = /past|larger than|not a whole number of|not a multiple of|has no sectors|needs a filesystem|earlier acquire|names an earlier acquire|not a power of two/;
    const disagreements: unknown[] = [];
    let judged = 0;
    for (const file of files) {
      const original = JSON.parse(readFileSync(join(CORPUS, file), "utf8"));
      for (const [path, , key] of places(original)) {
        const variants: [string, (parent: Record<string, unknown> | unknown[]) => void][] = [
          ["dropped", (parent) => (Array.isArray(parent) ? parent.splice(key as number, 1) : delete parent[key as string])],
          ["another type", (parent) => {
            const value = (parent as Record<string | number, unknown>)[key];
            (parent as Record<string | number, unknown>)[key] = typeof value === "string" ? 12345 : typeof value === "number" ? "twelve" : typeof value === "boolean" ? "yes" : Array.isArray(value) ? {} : [];
          }],
        ];
        if (typeof key === "string") variants.push(["a field added beside it", (parent) => void ((parent as Record<string, unknown>).bogusField = 1)]);
        // Fields that exclude each other: the schema says so, not the parser alone.
        if (key === "seg") variants.push(["gpns beside seg", (parent) => void ((parent as Record<string, unknown>).gpns = "0")], ["offset beside seg", (parent) => void ((parent as Record<string, unknown>).offset = 0)]);
        if (key === "fill") variants.push(["at beside fill", (parent) => void ((parent as Record<string, unknown>).at = 0)], ["gpns beside fill", (parent) => void ((parent as Record<string, unknown>).gpns = "0")]);
        for (const [change, apply] of variants) {
          const doc = structuredClone(original);
          const parent = places(doc).find(([p]) => p === path)![1];
          apply(parent);
          const bySchema = validate(doc) as boolean;
          let byParser = true;
          let message = "";
          try {
            parseScenarioText(JSON.stringify(doc), file);
          } catch (error) {
            byParser = false;
            message = (error as Error).message;
          }
          judged++;
          // The parser may refuse more only for what a schema cannot say (values that must fit).
          if (bySchema !== byParser && !(bySchema && SEMANTIC.test(message))) disagreements.push({ file, path, change, bySchema, message });
        }
      }
    }
    expect(disagreements).toEqual([]);
    expect(judged).toBeGreaterThan(500);
  });
});

describe("negative numbers", () => {
  /** Fields that take any number on purpose: a seed, and values a scenario sets wrong to expect the error. */
  const ANY_NUMBER = /(\.seed|\.thread|^steps\[\d+\]\.align)$/;

  /** Every numeric leaf of `value`, as [path, set(value)] pairs. */
  function numericLeaves(value: unknown, path = ""): [string, (root: unknown, replacement: number) => void][] {
    if (Array.isArray(value)) return value.flatMap((item, i) => numericLeaves(item, `${path}[${i}]`));
    if (typeof value !== "object" || value === null) return [];
    return Object.entries(value).flatMap(([key, child]) => {
      const childPath = path === "" ? key : `${path}.${key}`;
      if (typeof child === "number") return [[childPath, (root: unknown, replacement: number) => setAt(root, childPath, replacement)]];
      return numericLeaves(child, childPath);
    });
  }

  function setAt(root: unknown, path: string, replacement: number): void {
    const keys = path.replace(/\[(\d+)\]/g, ".$1").split(".");
    let node = root as Record<string, unknown>;
    for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
    node[keys[keys.length - 1]!] = replacement;
  }

  test("every numeric field of every corpus scenario, made negative, is refused when the file is read (and by the schema)", () => {
    let tried = 0;
    for (const file of files) {
      const text = readFileSync(join(CORPUS, file), "utf8");
      for (const [path, set] of numericLeaves(JSON.parse(text))) {
        if (ANY_NUMBER.test(path)) continue;
        const scenario = JSON.parse(text);
        set(scenario, -1);
        tried++;
        expect({ file, path, parsed: (() => { try { parseScenarioText(JSON.stringify(scenario), file); return "accepted"; } catch (error) { return (error as Error).name; } })() }).toEqual({ file, path, parsed: "ScenarioFormatError" });
        expect({ file, path, schema: validate(scenario) }).toEqual({ file, path, schema: false });
      }
    }
    expect(tried).toBeGreaterThan(20);
  });
});

describe("values that do not fit the scenario's own sizes", () => {
  test("every io, fill and check step of the corpus, moved past the disk's end or onto a GPN past the guest, is malformed (unless it expects an error)", () => {
    let tried = 0;
    for (const file of files) {
      const text = readFileSync(join(CORPUS, file), "utf8");
      const original = JSON.parse(text);
      const guestPages = parseScenarioText(text, file).guestSize / 4096;
      original.steps.forEach((step: Record<string, unknown>, i: number) => {
        const kind = ["io", "fill", "check"].find((key) => key in step);
        if (kind === undefined || (step.expect as { error?: string } | undefined)?.error !== undefined) return;
        const variants: Record<string, unknown>[] = [];
        if ("at" in step || kind === "io") variants.push({ ...step, at: "1G" });
        if (typeof step.gpns === "string") variants.push({ ...step, gpns: parseGpnList(step.gpns, "gpns").map((gpn) => gpn + guestPages).join(",") });
        for (const variant of variants) {
          const scenario = structuredClone(original);
          scenario.steps[i] = variant;
          tried++;
          let message = "accepted";
          try {
            parseScenarioText(JSON.stringify(scenario), file);
          } catch (error) {
            message = (error as Error).message;
          }
          expect({ file, step: i, message }).toEqual({ file, step: i, message: expect.stringMatching(new RegExp(`steps\\[${i}\\]\\.[^:]*: (disk bytes .* go past the disk|GPN \\d+ is past the guest)`)) });
        }
      });
    }
    expect(tried).toBeGreaterThan(20);
  });

  test("many lists within their own cap cannot add up past the scenario's: refused at the list that crosses it", () => {
    const steps = Array.from({ length: 30 }, () => ({ plan: "write", gpns: "0-8388606/2" }));
    const big = { name: "n", expected: "e", buggy: "b", guest: { size: "64k" }, disk: { size: "64k" }, steps };
    expect(() => parseScenarioText(JSON.stringify(big), "x.json")).toThrow('steps[1].gpns: "0-8388606/2": more pages than the 4194304 a scenario may name in all');
  });

  test("a disk alignment larger than the disk is malformed", () => {
    const bad = { name: "n", expected: "e", buggy: "b", guest: { size: "64k" }, disk: { size: "64k", align: "128k" }, steps: [{ probe: "disk" }] };
    expect(() => parseScenarioText(JSON.stringify(bad), "x.json")).toThrow("disk.align: 131072 is larger than the disk");
  });
});

describe("the shipped corpus", () => {
  test("repro --builtin runs every shipped scenario this host can run and names the others with the reason, in its JSON too", () => {
    const shipped = readdirSync(CORPUS).filter((name) => name.endsWith(".json"));
    const run = runCliIn(dir, "repro", "--builtin", "--json");
    expect(run.code).toBe(0);
    const doc = JSON.parse(run.stdout);
    const ran = doc.scenarios.map((s: { file: string }) => basename(s.file));
    const skipped = doc.skipped.map((s: { file: string }) => basename(s.file));
    expect([...ran, ...skipped].sort()).toEqual(shipped.sort()); // each exactly once
    for (const s of doc.scenarios) expect({ file: s.file, passed: s.passed }).toEqual({ file: s.file, passed: true });
    for (const s of doc.skipped) expect(s.reason).toMatch(/^disk kind \w+ /);
    for (const name of skipped) expect(run.stderr).toContain(`skipped ${name}: disk kind`);
    // Named, nothing is skipped: a scenario this host cannot run is refused, as a file of the user's is.
    const one = JSON.parse(runCliIn(dir, "repro", "--builtin", "read-only-request", "--json").stdout);
    expect({ ran: one.scenarios.length, skipped: one.skipped }).toEqual({ ran: 1, skipped: [] });
  }, 300_000);
});

describe("scripts", () => {
  test("examples/lost-rmw-update.ts imports the library by its package name and keeps writes intact with range locks", () => {
    const result = Bun.spawnSync([process.execPath, join(ROOT, "examples/lost-rmw-update.ts")], { cwd: ROOT });
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.toString().trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe("with range locks: byte 10 = 0xaa, byte 200 = 0xbb");
  });
});

describe("fills and checks larger than the chunk they are streamed in (4 MiB)", () => {
  const MIB = 2 ** 20;
  const run = (steps: unknown[]) =>
    runScenarioFile(
      (() => {
        const path = join(dir, "streamed.json");
        writeFileSync(path, JSON.stringify({ name: "streamed", expected: "e", buggy: "b", guest: { size: "12M" }, disk: { size: "12M" }, steps }));
        return path;
      })(),
    );

  test("a difference past the first chunks is found at its own offset, with the stamp it carries", async () => {
    const result = await run([
      { fill: "disk", pattern: "stamp" },
      { fill: "disk", at: 9 * MIB + 4096, len: 8, pattern: "stamp" }, // the same bytes: no difference
      { check: "disk-equals-pattern", at: 512, len: 11 * MIB, pattern: "stamp" },
      { fill: "disk", at: 9 * MIB + 4096, len: 8, pattern: "zero" },
      { check: "disk-equals-pattern", at: 512, len: 11 * MIB, pattern: "stamp" },
    ]);
    expect(result.steps.map((step) => step.passed)).toEqual([true, true, true, true, false]);
    // The stamp of 0x901000 starts with a zero byte: the first difference is the next one.
    expect(result.steps[4]!.detail).toContain(`first difference at byte ${9 * MIB + 4097 - 512} (disk offset ${9 * MIB + 4097}): disk 0x00, the stamp pattern 0x10`);
  });

  test("disk against guest over several segments and chunks: equal after the write, then the first changed byte", async () => {
    const seg = ["0-999", "1500-2999", "2001@100+1000"];
    const result = await run([
      { fill: "guest", gpns: "0-2999", pattern: "random", seed: 3 },
      { io: "write", seg, at: 4096, mode: "bounce" },
      { check: "disk-equals-guest", at: 4096, seg },
      { fill: "disk", at: 4096 + 2400 * 4096 + 7, len: 1, pattern: "stamp" },
      { check: "disk-equals-guest", at: 4096, seg },
    ]);
    expect(result.steps.map((step) => step.passed)).toEqual([true, true, true, true, false]);
    expect(result.steps[4]!.detail).toContain(`first difference at byte ${2400 * 4096 + 7} (disk offset ${4096 + 2400 * 4096 + 7})`);
  });
});
