/**
 * The JSON contract: every command's `--json` output (and every error's) validates against its
 * schema in `schema/`, on real runs that reach each shape: plain and empirical probes, every
 * plan decision, reads and writes in several modes, a bench with repeats, a refused case, the
 * io_uring engine and a scatter-gather shape, a comparison, the scenario corpus, and errors of
 * each kind. Each schema forbids fields it does not name, so output cannot grow past it
 * unnoticed; and every document starts with the same envelope.
 */
import { describe, expect, test } from "bun:test";
import Ajv2020 from "ajv/dist/2020";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { VERSION } from "../cli/version";
import { ROOT, randomBytes, runCliIn, runnableScenarios, scratchDir } from "./helpers";

const dir = scratchDir("json-schemas");
const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false });
const schemaFile = (name: string) => JSON.parse(readFileSync(join(ROOT, "schema", `${name}.schema.json`), "utf8"));
const validators = Object.fromEntries(
  ["probe", "plan", "io", "bench", "compare", "report", "repro", "image-create", "version", "trace-convert", "replay", "trace-capture", "trace", "error"].map((name) => [name, ajv.compile(schemaFile(name))]),
);

/** Runs a command with --json and checks its document against the command's (or the error) schema. */
function validated(schema: string, ...args: string[]): Record<string, unknown> {
  const result = runCliIn(dir, ...args, "--json");
  const doc = JSON.parse(result.stdout);
  const name = "error" in doc ? "error" : schema;
  const validate = validators[name]!;
  const ok = validate(doc);
  expect({ args, errors: ok ? null : validate.errors }).toEqual({ args, errors: null });
  expect(Object.keys(doc).slice(0, 4)).toEqual(["tool", "version", "schemaVersion", "command"]);
  expect(doc).toMatchObject({ tool: "bounce-bench", version: VERSION, schemaVersion: 3 });
  return doc;
}

describe("every command's --json validates against its schema", () => {
  const guest = join(dir, "guest.img");
  const disk = join(dir, "disk.img");
  writeFileSync(disk, randomBytes(2 ** 20, 41));

  test("image create, probe, plan, io", () => {
    expect(validated("image-create", "image", "create", guest, "--size", "1M").command).toBe("image create");
    validated("probe", "probe", disk);
    validated("probe", "probe", disk, "--empirical");
    const decisions = new Set<unknown>();
    for (const args of [
      ["--gpns", "0-1", "--at", "0"],
      ["--seg", "0@512+3584", "--seg", "2@0+512", "--at", "0"],
      ["--gpns", "0", "--len", "512", "--at", "512", "--op", "write"],
      ["--seg", "0-2050/2", "--at", "0"],
      ["--gpns", "0", "--len", "100", "--mode", "buffered"],
      ["--gpns", "0-15", "--mem-offset", "512", "--rules", "seed", "--align", "4096"],
      ["--gpns", "3", "--mem-offset", "100", "--len", "512", "--disk", disk, "--rules", "all", "--kernel", "all"],
      ["--gpns", "0-1", "--rules", "qemu", "--align", "4096"],
    ]) {
      decisions.add(validated("plan", "plan", ...args).decision);
    }
    expect([...decisions].sort()).toEqual(["bounce", "buffered", "direct", "rmw", "split"]);
    for (const args of [
      ["--op", "write", "--gpns", "0-1", "--at", "0"],
      ["--op", "read", "--seg", "0@512+3584", "--seg", "2@0+512", "--at", "4096"],
      ["--op", "write", "--gpns", "3", "--mem-offset", "8", "--len", "512", "--at", "100", "--mode", "auto"],
      ["--op", "read", "--gpns", "4", "--at", "0", "--mode", "buffered"],
    ]) {
      validated("io", "io", "--guest", guest, "--disk", disk, ...args);
    }
  });

  test("bench (repeats, a refused case, io_uring, a shape), and compare", () => {
    const out = join(dir, "bench.json");
    const doc = validated("bench", "bench", "--size", "2m", "--op", "read,write", "--bs", "4k", "--mem-offset", "0,8", "--mode", "auto,direct", "--ios", "20", "--repeat", "4", "--align", "4096");
    expect((doc.results as { error: unknown }[]).some((r) => r.error !== null)).toBe(true);
    validated("bench", "bench", "--size", "2m", "--seg", "0@512+3584", "--seg", "2@0+512", "--engine", "uring", "--qd", "4", "--ios", "20", "--repeat", "1");
    writeFileSync(out, JSON.stringify(doc));
    validated("compare", "compare", out, out);
    const report = validated("report", "report", out, out, "--html", join(dir, "report.html"));
    expect(report).toMatchObject({ run: out, base: out, html: join(dir, "report.html"), cases: 8 });
    expect(report.bytes).toBe(readFileSync(join(dir, "report.html")).length);
    expect(validated("version", "--version")).toMatchObject({ command: "version", runtime: { bun: Bun.version } });
  });

  test("repro over the corpus (the files this machine can run)", () => {
    const { runnable, unavailable } = runnableScenarios();
    const doc = validated("repro", "repro", ...(unavailable.length === 0 ? [join(ROOT, "scenarios")] : runnable));
    expect((doc.scenarios as unknown[]).length).toBe(runnable.length);
  });

  test("trace convert, replay (every rule set and kernel, and --execute), and every line of the trace", () => {
    const log = join(dir, "job.iolog");
    writeFileSync(log, "fio version 2 iolog\n/d add\n/d read 0 4096\n/d write 4608 512\n/d read 8192 8192\n");
    const trace = join(dir, "job.trace");
    expect(validated("trace-convert", "trace", "convert", log, "--from", "fio-iolog", "--mem-offset", "512", "--output", trace)).toMatchObject({ command: "trace convert", ios: 3 });
    const validateLine = validators["trace"]!;
    for (const line of readFileSync(trace, "utf8").trim().split("\n")) {
      const ok = validateLine(JSON.parse(line));
      expect({ line, errors: ok ? null : validateLine.errors }).toEqual({ line, errors: null });
    }
    const all = validated("replay", "replay", trace, "--rules", "all", "--kernel", "all");
    expect((all.summary as { rules: unknown[] }).rules).toHaveLength(5);
    const done = validated("replay", "replay", trace, "--rules", "seed", "--execute", "--disk", disk, "--force");
    expect(done.execute).toMatchObject({ ios: 3, verified: 3 });
  });

  test("errors of each kind, from each command", () => {
    for (const args of [
      ["probe", join(dir, "missing")],
      ["plan", "--gpns", "x"],
      ["io", "--guest", guest, "--disk", disk, "--op", "read", "--at", "0", "--gpns", "999999"],
      ["bench", "--bs", "1000"],
      ["compare", disk, disk],
      ["repro", join(dir, "missing.json")],
      ["image", "create", "/dev/null", "--size", "4k"],
      ["trace", "convert", join(dir, "missing.iolog"), "--from", "blkparse", "--output", join(dir, "x.trace")],
      ["trace", "capture", "--output", join(dir, "x.trace")],
      ["replay", join(dir, "missing.trace")],
      ["bnech"],
    ]) {
      const doc = validated("error", ...args);
      expect(doc.command).toBe(args[0] === "image" || args[0] === "trace" ? `${args[0]} ${args[1]}` : args[0] === "bnech" ? null : args[0]);
    }
  });
});
