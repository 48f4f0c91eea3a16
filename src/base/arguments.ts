/**
 * Type checks at the library's public entry points: a wrong kind of argument from a script (a
 * number for a path, null for a buffer) is an `InvalidInputError` naming the argument, never a
 * raw `TypeError` from deep inside. Values are checked where they are used (sizes, ranges).
 */
import { InvalidInputError } from "./errors";

export function requireString(value: unknown, what: string): string {
  if (typeof value !== "string") throw new InvalidInputError(`${what}: ${describe(value)} is not a string`);
  return value;
}

export function requireBytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidInputError(`${what}: ${describe(value)} is not a Uint8Array`);
  return value;
}

export function requireArray(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new InvalidInputError(`${what}: ${describe(value)} is not an array`);
  return value;
}

export function requireObject(value: unknown, what: string): object {
  if (typeof value !== "object" || value === null) throw new InvalidInputError(`${what}: ${describe(value)} is not an object`);
  return value;
}

/** `null`, `a number (5)`, `an object`: what was given instead. */
function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === "number" || typeof value === "boolean") return `${typeof value} ${value}`;
  return Array.isArray(value) ? "an array" : `a ${typeof value}`;
}
