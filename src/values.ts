/**
 * Parsing of the value syntax shared by the command line and scenario files (SPEC.md, "Values").
 *
 * Sizes and offsets: a non-negative integer, decimal or `0x` hex, with an optional binary
 * suffix `k`/`K`/`KiB`, `m`/`M`/`MiB`, `g`/`G`/`GiB` (`4k` = 4096). Anything else (negative,
 * fractional, empty, trailing garbage, beyond 2^53) is an `InvalidInputError` that names the
 * option and the value.
 */
import { InvalidInputError } from "./errors";

const SIZE_PATTERN = /^(0x[0-9a-f]+|[0-9]+)\s*(k|kib|m|mib|g|gib)?$/i;
const MULTIPLIERS: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 };

/** Examples quoted in size errors. */
const SIZE_EXAMPLES = "e.g. 4096, 0x1000, 4k, 1MiB";

/**
 * Parses a size or offset. `what` names where the value came from (`--size`,
 * `steps[2].at`) and starts the error message.
 */
export function parseSize(text: string | number, what: string): number {
  if (typeof text === "number") {
    if (Number.isSafeInteger(text) && text >= 0) return text;
    throw new InvalidInputError(`${what}: ${text} is not a size (${SIZE_EXAMPLES})`);
  }
  const match = SIZE_PATTERN.exec(text.trim());
  if (match === null) throw new InvalidInputError(`${what}: ${JSON.stringify(text)} is not a size (${SIZE_EXAMPLES})`);
  const digits = match[1]!;
  const suffix = match[2]?.[0]?.toLowerCase();
  const value = BigInt(digits) * BigInt(suffix === undefined ? 1 : MULTIPLIERS[suffix]!);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InvalidInputError(`${what}: ${JSON.stringify(text)} is beyond 2^53`);
  }
  return Number(value);
}
