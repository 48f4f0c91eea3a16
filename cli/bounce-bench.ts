#!/usr/bin/env bun
/** The `bounce-bench` executable: runs the CLI on this process's argv and exits with its code. */
import { main } from "./main";

/** The reader of our output went away (`bounce-bench plan ... | head`): stop quietly, as a SIGPIPE would. */
const EXIT_BROKEN_PIPE = 128 + 13;
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(EXIT_BROKEN_PIPE);
    throw error;
  });
}

process.exitCode = await main(process.argv.slice(2));
