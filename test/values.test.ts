/**
 * The value syntax of SPEC.md: sizes and offsets.
 */
import { expect, test } from "bun:test";
import fc from "fast-check";
import { parseSize } from "../src/values";
import { thrown } from "./helpers";

test("sizes: decimal, hex and binary suffixes", () => {
  const cases: [string, number][] = [
    ["0", 0],
    ["4096", 4096],
    ["0x1000", 4096],
    ["0X10", 16],
    ["4k", 4096],
    ["4K", 4096],
    ["4KiB", 4096],
    ["1m", 2 ** 20],
    ["1MiB", 2 ** 20],
    ["2g", 2 ** 31],
    ["1GiB", 2 ** 30],
    ["0x10k", 16 * 1024],
    [" 512 ", 512],
    [String(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER],
  ];
  for (const [text, value] of cases) expect(parseSize(text, "--size")).toBe(value);
});

test("anything else is an error naming the option and the value", () => {
  for (const bad of ["", "-1", "1.5", "4kb", "4 k b", "k", "0x", "1e3", "12abc", "9007199254740992", "8388608g", "０"]) {
    const error = thrown(() => parseSize(bad, "--at"));
    expect(error.kind).toBe("input");
    expect(error.message.startsWith(`--at: ${JSON.stringify(bad)} is`)).toBe(true);
  }
});

test("property: every safe integer round-trips in decimal, hex and with a suffix", () => {
  fc.assert(
    fc.property(fc.maxSafeNat(), (n) => {
      expect(parseSize(String(n), "v")).toBe(n);
      expect(parseSize(`0x${n.toString(16)}`, "v")).toBe(n);
      const k = Math.floor(n / 1024);
      expect(parseSize(`${k}k`, "v")).toBe(k * 1024);
    }),
  );
});
