/**
 * PagedRange: validity, reported offset and pages, subranges and runs; property-tested against
 * the byte-address model of test/helpers.ts.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { InvalidRangeError, PagedRange } from "../src";
import { arbitraryRange } from "./arbitraries";
import { modelAddresses, modelRuns, PAGE, thrown } from "./helpers";

describe("validity", () => {
  test("valid iff offset + len <= pages * 4096", () => {
    expect(PagedRange.tryNew(0, 2 * PAGE, [1, 2])).not.toBeNull();
    expect(PagedRange.tryNew(1, 2 * PAGE, [1, 2])).toBeNull();
    expect(PagedRange.tryNew(2 * PAGE, 0, [1, 2])).not.toBeNull();
    const error = thrown(() => new PagedRange(100, 2 * PAGE, [1, 2]));
    expect(error).toBeInstanceOf(InvalidRangeError);
    expect(error.message).toBe("range 100+8192 does not fit in 2 pages (8192 bytes)");
  });

  test("negative, fractional and non-finite offsets and lengths are refused", () => {
    for (const [offset, len] of [[-1, 0], [0, -1], [0.5, 1], [0, Number.NaN], [Number.POSITIVE_INFINITY, 0]]) {
      expect(PagedRange.tryNew(offset!, len!, [0, 1, 2])).toBeNull();
    }
  });

  test("an offset beyond 4096 skips whole pages; trailing GPNs are allowed; GPN values are not checked", () => {
    const range = new PagedRange(PAGE + 512, 1024, [9, 2 ** 52, 7, 8]);
    expect(range.offset).toBe(512);
    expect(range.gpns()).toEqual([2 ** 52]);
    expect(range.pageCount).toBe(1);
  });
});

describe("reported shape", () => {
  test("offset is into the first covered page and gpns() lists the covered pages only", () => {
    const range = new PagedRange(3 * PAGE - 100, 200 + PAGE, [10, 11, 12, 13, 14, 15]);
    expect(range.offset).toBe(PAGE - 100);
    expect(range.len).toBe(200 + PAGE);
    expect(range.gpns()).toEqual([12, 13, 14]);
    expect(range.gpn(2)).toBe(14);
  });

  test("an empty range covers no page", () => {
    expect(new PagedRange(100, 0, [5]).gpns()).toEqual([]);
    expect(PagedRange.empty().pageCount).toBe(0);
    expect(PagedRange.empty().runs()).toEqual([]);
  });

  test("consecutive GPNs merge into one run; anything else starts a new one", () => {
    const range = new PagedRange(512, 5 * PAGE - 1024, [4, 5, 6, 6, 2]);
    expect(range.runs()).toEqual([
      { gpn: 4, offset: 512, len: 3 * PAGE - 512 },
      { gpn: 6, offset: 0, len: PAGE },
      { gpn: 2, offset: 0, len: PAGE - 512 },
    ]);
  });
});

describe("subrange", () => {
  const range = new PagedRange(100, 3 * PAGE, [1, 2, 3, 4]);

  test("subrange throws past the end, trySubrange returns null", () => {
    expect(range.trySubrange(1, 3 * PAGE)).toBeNull();
    expect(thrown(() => range.subrange(3 * PAGE, 1))).toBeInstanceOf(InvalidRangeError);
    expect(thrown(() => range.subrange(-1, 1))).toBeInstanceOf(InvalidRangeError);
  });

  test("a subrange is the same bytes", () => {
    const sub = range.subrange(PAGE, PAGE + 5);
    expect(sub.offset).toBe(100);
    expect(sub.gpns()).toEqual([2, 3]);
    expect(range.subrange(3 * PAGE, 0).len).toBe(0);
  });
});

describe("properties against the byte-address model", () => {
  test("runs cover exactly the model's bytes, merged exactly where addresses are contiguous", () => {
    fc.assert(
      fc.property(arbitraryRange, ([offset, len, gpns]) => {
        const runs = new PagedRange(offset, len, gpns).runs().map((run) => ({ base: run.gpn * PAGE + run.offset, len: run.len }));
        expect(runs).toEqual(modelRuns(modelAddresses(offset, len, gpns)));
      }),
      { numRuns: 300 },
    );
  });

  test("a subrange is the model's slice of bytes; trySubrange is null exactly when it does not fit", () => {
    fc.assert(
      fc.property(arbitraryRange, fc.nat(), fc.nat(), ([offset, len, gpns], a, b) => {
        const range = new PagedRange(offset, len, gpns);
        const subOffset = a % (len + 2);
        const subLen = b % (len + 2);
        const sub = range.trySubrange(subOffset, subLen);
        if (subOffset + subLen > len) {
          expect(sub).toBeNull();
          return;
        }
        const addresses = modelAddresses(offset, len, gpns).slice(subOffset, subOffset + subLen);
        expect(sub!.len).toBe(subLen);
        expect(sub!.runs().map((run) => ({ base: run.gpn * PAGE + run.offset, len: run.len }))).toEqual(modelRuns(addresses));
        if (subLen > 0) expect(sub!.offset).toBe(addresses[0]! % PAGE);
      }),
      { numRuns: 300 },
    );
  });

  test("only the first and last covered pages are partial", () => {
    fc.assert(
      fc.property(arbitraryRange, ([offset, len, gpns]) => {
        const range = new PagedRange(offset, len, gpns);
        const perPage = new Map<number, number>();
        const positions = Array.from({ length: len }, (_, i) => Math.floor((offset + i) / PAGE));
        for (const page of positions) perPage.set(page, (perPage.get(page) ?? 0) + 1);
        const pages = [...perPage.keys()];
        expect(pages.length).toBe(range.pageCount);
        expect(pages.map((page) => gpns[page])).toEqual(range.gpns());
        pages.slice(1, -1).forEach((page) => expect(perPage.get(page)).toBe(PAGE));
      }),
      { numRuns: 200 },
    );
  });
});
