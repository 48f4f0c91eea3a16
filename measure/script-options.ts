/**
 * Flags of the `npm run` scripts (bench, soak, oracle, bench:copy), parsed by `node:util`'s
 * `parseArgs` in strict mode: an unknown flag or a bad number is one line on stderr and exit 2,
 * as in the CLI.
 */
import { parseArgs } from "node:util";

type Spec = Record<string, { type: "string" | "boolean"; default?: string | boolean }>;

/** Parses `process.argv` by `spec`; `script` names the script in errors. */
export function scriptOptions<S extends Spec>(script: string, spec: S): { [K in keyof S]: S[K]["type"] extends "boolean" ? boolean : string } {
  try {
    return parseArgs({ args: process.argv.slice(2), options: spec, strict: true, allowPositionals: false }).values as never;
  } catch (error) {
    usage(script, (error as Error).message);
  }
}

/** A flag's value as a number at least `min`, or exit 2 naming the flag. */
export function numberFlag(script: string, flag: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < min) usage(script, `--${flag}: ${JSON.stringify(text)} is not a number of at least ${min}`);
  return value;
}

/** A bad flag: `script: message` as one line on stderr, and exit 2. */
export function usage(script: string, message: string): never {
  process.stderr.write(`${script}: ${message.split("\n")[0]}\n`);
  process.exit(2);
}
