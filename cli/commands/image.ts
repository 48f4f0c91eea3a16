/**
 * `bounce-bench image create PATH --size N [--force]`: a sparse guest image or disk file.
 */
import type { Command } from "commander";
import { createSparseFile } from "../../src/host/files";
import { closeFd } from "../../src/native";
import { parseSize } from "../../src/base/value-parsers";
import type { Context } from "../main";
import { jsonLine } from "../json-output";
import { sharedOptions } from "../options";

export function registerImage(program: Command, context: Context): void {
  const image = program.command("image").description("create guest images and disk files");
  image
    .command("create")
    .summary("a sparse guest image or disk file")
    .description(
      "Create a sparse file of --size bytes (a guest image must be a whole number of 4096-byte pages). " +
        "An existing file is never replaced without --force, and nothing under /dev is ever touched.",
    )
    .argument("<path>", "file to create")
    .requiredOption("--size <n>", "(required) size in bytes: 4096, 0x1000, 4k, 64MiB, 1G, 1T")
    .addHelpText(
      "after",
      `
Examples:
  $ bounce-bench image create /tmp/guest.img --size 1MiB
  $ bounce-bench image create /tmp/disk.img --size 64M --force     replace an existing file`,
    )
    .addOption(sharedOptions.force("replace an existing regular file"))
    .addOption(sharedOptions.json())
    .action((path: string, options: { size: string; force?: boolean; json?: boolean }) => {
      const size = parseSize(options.size, "--size");
      closeFd(createSparseFile(path, size, { force: options.force ?? false }, "image"));
      if (options.json) context.io.stdout(jsonLine("image create", { path, size, sparse: true }));
      else context.io.stdout(`created ${path}: ${size} bytes (sparse)\n`);
    });
}
