/**
 * fast-check generators shared by the property tests: page lists, ranges over them.
 */
import fc from "fast-check";
import { PAGE } from "./helpers";

/** Guest pages the generated GPNs fall in: 0 .. GUEST_PAGES-1. */
export const GUEST_PAGES = 32;

/** Random page lists with some runs of consecutive GPNs, over guest pages 0 .. GUEST_PAGES-1. */
export const arbitraryGpns = fc
  .array(fc.tuple(fc.integer({ min: 0, max: GUEST_PAGES - 3 }), fc.integer({ min: 1, max: 3 })), { minLength: 1, maxLength: 6 })
  .map((runs) => runs.flatMap(([start, count]) => Array.from({ length: count }, (_, i) => start + i)));

/** A random valid (offset, len, gpns). */
export const arbitraryRange = arbitraryGpns.chain((gpns) =>
  fc
    .integer({ min: 0, max: gpns.length * PAGE })
    .chain((offset) => fc.tuple(fc.constant(offset), fc.integer({ min: 0, max: gpns.length * PAGE - offset }), fc.constant(gpns))),
);
