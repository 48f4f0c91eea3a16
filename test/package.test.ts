/**
 * The package as a user installs it: `npm pack`, then `npm install` of the tarball in another
 * directory (dependencies from npm's cache where it has them), then the `bounce-bench` command
 * works with no Bun on PATH (the launcher finds the Bun that came as a dependency), by `npx`
 * and directly, passes exit codes through, and passes a signal on so that bench still cleans up.
 * Skips, saying why, where npm is missing.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, scratchDir } from "./helpers";
import { VERSION } from "../cli/version";
import { captureUnavailable } from "../src/trace/capture";
import { findProgram } from "../src/host/scratch-dir";

const npm = Bun.which("npm");
const why = npm === null ? " (skipped: npm is not on PATH)" : "";

describe("the installed package", () => {
  test.skipIf(npm === null)(`npm pack, npm install elsewhere, then bounce-bench runs on the Bun it brought${why}`, async () => {
    const dir = scratchDir("package");
    const consumer = join(dir, "consumer");
    mkdirSync(consumer);
    const pack = spawnSync(npm!, ["pack", "--pack-destination", dir, "--silent"], { cwd: ROOT, encoding: "utf8" });
    expect(pack.status).toBe(0);
    const tarball = join(dir, pack.stdout.trim().split("\n").pop()!);
    // The install README documents: Bun's install script allowed first, then no warning.
    writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true }));
    expect(spawnSync(npm!, ["pkg", "set", "allowScripts.bun=true", "--json"], { cwd: consumer }).status).toBe(0);
    const install = spawnSync(npm!, ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball], { cwd: consumer, encoding: "utf8", timeout: 300_000 });
    expect({ status: install.status, stderr: install.stderr }).toMatchObject({ status: 0 });
    expect(install.stderr).not.toContain("allow-scripts");

    // No Bun on PATH: only Node's directory and the system's.
    const nodeEnv = { ...process.env, PATH: `${join(Bun.which("node")!, "..")}:/usr/bin:/bin` };
    expect(spawnSync("bun", ["--version"], { env: nodeEnv }).error).toBeDefined(); // really no bun here
    const direct = spawnSync(join(consumer, "node_modules", ".bin", "bounce-bench"), ["--version"], { cwd: consumer, env: nodeEnv, encoding: "utf8" });
    expect({ code: direct.status, out: direct.stdout.trim() }).toEqual({ code: 0, out: VERSION });
    const viaNpx = spawnSync(Bun.which("npx")!, ["bounce-bench", "image", "create", "disk.img", "--size", "1M"], { cwd: consumer, env: nodeEnv, encoding: "utf8" });
    expect(viaNpx.status).toBe(0);
    expect(readdirSync(consumer)).toContain("disk.img");
    const refused = spawnSync(join(consumer, "node_modules", ".bin", "bounce-bench"), ["image", "create", "disk.img", "--size", "1M"], { cwd: consumer, env: nodeEnv, encoding: "utf8" });
    expect({ code: refused.status, err: refused.stderr }).toEqual({ code: 2, err: "bounce-bench: image disk.img: already exists (use --force to replace it)\n" });

    // What the help's examples use is in the package: the scenario corpus, by name and whole.
    const bin = join(consumer, "node_modules", ".bin", "bounce-bench");
    const one = spawnSync(bin, ["repro", "--builtin", "rmw-unaligned-write", "--json"], { cwd: consumer, env: nodeEnv, encoding: "utf8" });
    expect({ code: one.status, passed: JSON.parse(one.stdout).scenarios.map((s: { passed: boolean }) => s.passed) }).toEqual({ code: 0, passed: [true] });
    const corpus = spawnSync(bin, ["repro", "--builtin", "--json"], { cwd: consumer, env: nodeEnv, encoding: "utf8" });
    expect(corpus.status).toBe(0);
    expect(JSON.parse(corpus.stdout).scenarios.length).toBeGreaterThan(10);
    expect(readdirSync(join(consumer, "node_modules", "bounce-bench", "docs"))).toContain("scenarios.md"); // the help's pointer

    // Every command's help examples run in the installed package, in order, each command's in a
    // directory of its own (`/tmp/` standing for it): exit 0 (compare: 0 or 1, a regression is a
    // measurement). Left out: examples naming a device (`/dev/...`, /dev/null aside) or making a
    // disk kind (root), following a pid, and shell (`;`, loops), with the examples after one
    // (they may use what it made); a `printf ... > file` line runs, in sh, making its file.
    // Capture's examples run where capture can (root, bpftrace). Bench examples measure for
    // 50 ms, once.
    const ran: string[] = [];
    const commands = [["image", "create"], ["probe"], ["plan"], ["io"], ["bench"], ["compare"], ["report"], ["repro"], ["trace", "convert"], ["replay"]];
    if (captureUnavailable() === null && findProgram("fio") !== null) commands.push(["trace", "capture"]);
    for (const command of commands) {
      const help = spawnSync(bin, [...command, "--help"], { cwd: consumer, env: { ...nodeEnv, COLUMNS: "200" }, encoding: "utf8" }).stdout;
      const here = join(dir, `help-${command.join("-")}`);
      mkdirSync(here);
      // repro's "your own" scenario: one of the shipped ones stands in for it.
      if (command[0] === "repro") copyFileSync(join(consumer, "node_modules", "bounce-bench", "scenarios", "rmw-unaligned-write.json"), join(here, "my-bug.json"));
      const examples: string[] = [];
      for (const line of help.slice(help.lastIndexOf("Examples:")).split("\n")) {
        const text = line.trim();
        if (text.startsWith("$ ")) examples.push(text.slice(2));
        else if (examples.length > 0 && examples.at(-1)!.endsWith("\\")) examples.push(`${examples.pop()!.slice(0, -1).trimEnd()} ${text}`);
      }
      const runs = examples.map((example) => example.replace(/ {2,}.*$/, ""));
      const shellAt = runs.findIndex((example) => !example.startsWith("bounce-bench ") && !example.startsWith("printf ") || /;|\bfor\b/.test(example));
      for (const example of (shellAt < 0 ? runs : runs.slice(0, shellAt)).filter((e) => !/\/dev\/(?!null\b)|--disk-kind|--pid/.test(e))) {
        const local = example.replaceAll("/tmp/", `${here}/`);
        if (example.startsWith("printf ")) {
          expect(spawnSync("sh", ["-c", local], { cwd: here }).status).toBe(0);
          continue;
        }
        // Words as a shell splits these: at spaces, '...' kept whole.
        let args = (local.match(/'[^']*'|\S+/g) ?? []).map((word) => word.replace(/^'(.*)'$/, "$1")).slice(1);
        if (args[0] === "bench") args = [...args, "--runtime", "50ms", "--repeat", "1", ...(args.includes("--size") ? [] : ["--size", "8m"])];
        const result = spawnSync(bin, args, { cwd: here, env: nodeEnv, encoding: "utf8", timeout: 120_000 });
        const allowed = args[0] === "compare" ? [0, 1] : [0];
        expect({ example, code: result.status, stderr: allowed.includes(result.status ?? -1) ? "" : result.stderr }).toEqual({ example, code: allowed.includes(result.status ?? -1) ? result.status : 0, stderr: "" });
        ran.push(example);
      }
    }
    expect(ran.length).toBeGreaterThan(20);

    // A signal to the launcher reaches bench, which stops, cleans up and exits 130.
    const tmp = join(dir, "tmp");
    mkdirSync(tmp);
    const child = Bun.spawn([join(consumer, "node_modules", ".bin", "bounce-bench"), "bench", "--size", "8m", "--op", "read", "--bs", "4k", "--runtime", "30", "--repeat", "1"], {
      cwd: consumer,
      env: { ...nodeEnv, TMPDIR: tmp },
      stdout: "pipe",
      stderr: "pipe",
    });
    for (let i = 0; i < 400 && readdirSync(tmp).length === 0; i++) await Bun.sleep(25);
    await Bun.sleep(500);
    child.kill("SIGINT");
    expect(await child.exited).toBe(130);
    expect(readdirSync(tmp)).toEqual([]);
  }, 400_000);
});
