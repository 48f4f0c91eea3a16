/**
 * The value syntax of SPEC.md: sizes and offsets.
 */
import { expect, test } from "bun:test";
import fc from "fast-check";
import { PageBudget, parseGpnList, parseSegment, parseSize } from "../src/base/value-parsers";
import { decodeText } from "../src/host/files";
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

test("GPN lists: items, ranges, strides, order and repeats kept", () => {
  expect(parseGpnList("3,7-9,0x10", "--gpns")).toEqual([3, 7, 8, 9, 16]);
  expect(parseGpnList(" 5 , 5, 1-1 ", "--gpns")).toEqual([5, 5, 1]);
  expect(parseGpnList("0-10/2,0x20-0x28/4", "--gpns")).toEqual([0, 2, 4, 6, 8, 10, 32, 36, 40]);
  for (const bad of ["", "1,,2", "5-2", "a", "-1", "1-", "3/2", "0-4/0", "0-99999999"]) {
    const error = thrown(() => parseGpnList(bad, "--gpns"));
    expect(error.kind).toBe("input");
    expect(error.message.startsWith("--gpns: ")).toBe(true);
  }
});

test("segments: GPNS[@OFFSET][+LEN] with defaults, and ranges that must fit", () => {
  expect(parseSegment("0-1@512+3584", "--seg")).toEqual({ gpns: [0, 1], offset: 512, len: 3584 });
  expect(parseSegment("4", "--seg")).toEqual({ gpns: [4], offset: 0, len: 4096 });
  expect(parseSegment("4-5@1k", "--seg")).toEqual({ gpns: [4, 5], offset: 1024, len: 7168 });
  expect(parseSegment("2+100", "--seg")).toEqual({ gpns: [2], offset: 0, len: 100 });
  expect(() => parseSegment("0@512+4000", "--seg")).toThrow("do not fit in 1 page");
  expect(() => parseSegment("0@@1", "--seg")).toThrow("--seg");
  expect(() => parseSegment("@1", "--seg")).toThrow("is not a segment");
});

test("values decided one way: spaces around a size and before its unit are ignored, inside a number they are not; in GPN lists spaces are ignored anywhere", () => {
  expect(parseSize(" 4 k ", "--len")).toBe(4096);
  expect(parseSize("64 MiB", "--len")).toBe(64 * 2 ** 20);
  expect(() => parseSize("4 0 9 6", "--len")).toThrow("is not a size");
  expect(() => parseSize("0 x1000", "--len")).toThrow("is not a size");
  expect(parseGpnList(" 0 - 3 , 7 ", "--gpns")).toEqual([0, 1, 2, 3, 7]);
});

test("exactly 2^53 is named as what it is, and 2^53 - 1 is still a value", () => {
  expect(() => parseSize("9007199254740992", "--at")).toThrow('--at: "9007199254740992" is 2^53 or more (the largest exact whole number is 2^53 - 1)');
  expect(() => parseSize("0x20000000000000", "--at")).toThrow("is 2^53 or more");
  expect(parseSize("9007199254740991", "--at")).toBe(2 ** 53 - 1);
  expect(() => parseGpnList("9007199254740992", "--gpns")).toThrow("is 2^53 or more");
});

test("text files: a leading byte-order mark is dropped, bytes that are not UTF-8 are refused", () => {
  const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('{"a":1}')]);
  expect(decodeText(bom, "x.json")).toBe('{"a":1}');
  expect(() => decodeText(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), "x.json")).toThrow("x.json: is not UTF-8 text");
  expect(decodeText(new TextEncoder().encode("grüße"), "x.json")).toBe("grüße");
});

test("a page budget caps what all of a command's lists name together, before any list is expanded", () => {
  const budget = new PageBudget(10, "one command");
  expect(parseGpnList("0-5", "--seg #1", budget)).toHaveLength(6);
  expect(budget.remaining).toBe(4);
  expect(() => parseGpnList("10-14", "--seg #2", budget)).toThrow("more pages than the 4194304 one command may name in all");
  expect(parseSegment("20-23", "--seg #3", budget).gpns).toEqual([20, 21, 22, 23]);
  expect(budget.remaining).toBe(0);
});
