#!/usr/bin/env bun
/** The `bounce-bench` executable: runs the CLI on this process's argv and exits with its code. */
import { main } from "./main";

process.exitCode = await main(process.argv.slice(2));
