#!/usr/bin/env node
/**
 * The `bounce-bench` command as npm installs it: a Node.js launcher that runs the CLI
 * (`cli/bounce-bench.ts`) on the Bun that came with this package as a dependency, wherever npm
 * put it (hoisted or nested), so that `npx bounce-bench` works without Bun on PATH.
 *
 * The child gets this process's arguments, environment and terminal; a signal sent to this
 * process (SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2: those the CLI cleans up on) is passed on
 * to it, and this process exits as it did: with its code, or by the same signal. A SIGKILL
 * cannot be passed on: the child learns of it from the kernel instead (it is given
 * BOUNCE_BENCH_LAUNCHER_PID and asks for a SIGHUP when its parent dies), so it never outlives
 * this process with a loop device or scratch files.
 */
"use strict";
const { spawn } = require("node:child_process");
const { dirname, join } = require("node:path");

function bunExecutable() {
  try {
    const manifest = require.resolve("bun/package.json", { paths: [__dirname] });
    return join(dirname(manifest), require(manifest).bin.bun);
  } catch {
    process.stderr.write(
      "bounce-bench: cannot find the bun package it depends on: install bounce-bench again the way it was installed (npm install in its clone, or npm install PATH-OR-TARBALL in your project), with its install script allowed (npm pkg set allowScripts.bun=true --json)\n",
    );
    process.exit(2);
  }
}

const child = spawn(bunExecutable(), [join(__dirname, "..", "cli", "bounce-bench.ts"), ...process.argv.slice(2)], {
  stdio: "inherit",
  env: { ...process.env, BOUNCE_BENCH_LAUNCHER_PID: String(process.pid) },
});
const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2"];
for (const signal of FORWARDED) process.on(signal, () => child.kill(signal));
child.on("error", (error) => {
  process.stderr.write(`bounce-bench: cannot start bun: ${error.message}\n`);
  process.exit(2);
});
child.on("exit", (code, signal) => {
  if (signal !== null) {
    for (const name of FORWARDED) process.removeAllListeners(name);
    process.kill(process.pid, signal);
  } else process.exit(code ?? 1);
});
