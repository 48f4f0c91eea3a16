/**
 * Memory on base pages laid out physically as asked: pages whose physical frames form runs of
 * given lengths, so that a device doing direct IO into it sees a chosen number of DMA segments.
 *
 *   asked runs     [4, 1, 2]                   one segment per run
 *   region         |p p p p|p|p p|             virtually contiguous, 7 pages
 *   pool (split    |p p p p . p . p p . . . .  physically contiguous base pages; a page left
 *   huge page)                                 out between two runs keeps them apart
 *
 * The kernel merges physically adjacent pages of a direct IO's buffer into one segment, so how
 * fragmented a buffer's pages are decides how many descriptors the device (or the hypervisor)
 * handles per IO; on the VM measured, the fewer the runs, the cheaper and faster the IO
 * (docs/performance.md). Guest memory on 4 KiB pages gets whatever the allocator gave it; a
 * bounce buffer gets other pages. Comparing the two compares allocations, not bouncing, unless
 * the bounce buffer has the guest buffer's runs: that is what this makes.
 *
 * How: a pool of anonymous memory on transparent huge pages, filled (so that the split keeps
 * every page), then split into base pages in place (`splitHugePages`): 512 pages on contiguous
 * frames each, every one its own folio, as base pages are. Each asked run is taken from the
 * pool's runs (frames read from /proc/self/pagemap), a page left out after it, and the pieces
 * are moved with mremap(2), frames and all, into one new region; the pool is then unmapped.
 * Where the kernel gives no huge pages the pool's own runs are short: it grows a few times, then
 * long runs are made of shorter ones and the result says it is not matched. Frames are visible
 * only to root (CAP_SYS_ADMIN): elsewhere nothing can be laid out, and the caller uses plain
 * memory.
 */
import { PAGE_SIZE } from "../base/constants";
import { HUGE_PAGE_SIZE, keepBasePages, NativeRegion, physicalFrames, runLengths, splitHugePages, type Address } from "../native";

const HUGE_PAGE_PAGES = HUGE_PAGE_SIZE / PAGE_SIZE;
/** Huge pages the pool may add, one at a time, beyond the first estimate. */
const POOL_GROWTHS = 4;

export interface LaidOutMemory {
  /** Zeroed memory of `runs.reduce(+)` pages; owns its pages. */
  region: NativeRegion;
  /** Whether the region's runs are exactly those asked for (else some long runs were made of shorter ones). */
  matched: boolean;
}

/** A run of free pool pages: its address, its first frame, its length in pages. */
interface PoolRun {
  address: number;
  frame: number;
  pages: number;
}

/**
 * Memory whose physical runs have the lengths `runs`, in order (see the module doc); null
 * where frames cannot be read (not root, no pagemap).
 */
export function memoryWithRuns(runs: readonly number[], what: string): LaidOutMemory | null {
  const pages = runs.reduce((sum, run) => sum + run, 0);
  if (!(pages > 0 && runs.every((run) => Number.isSafeInteger(run) && run > 0))) throw new RangeError(`${what}: runs ${runs.join(",")} are not page counts`);
  const pools: NativeRegion[] = [];
  try {
    const free: PoolRun[] = [];
    const grow = (hugePages: number): boolean => {
      const pool = NativeRegion.anonymous(hugePages * HUGE_PAGE_PAGES * PAGE_SIZE, `${what} (pool)`, true);
      pools.push(pool);
      pool.fill(0, pool.length, 0xff);
      splitHugePages(pool.address(0), pool.length);
      const frames = physicalFrames(pool.address(0), pool.length);
      if (frames === null || frames.includes(-1)) return false;
      let page = 0;
      for (const length of runLengths(frames)) {
        free.push({ address: (pool.address(0) as number) + page * PAGE_SIZE, frame: frames[page]!, pages: length });
        page += length;
      }
      return true;
    };
    // Each run and the page left out after it.
    if (!grow(Math.ceil((pages + runs.length) / HUGE_PAGE_PAGES))) return null;

    const pieces: PoolRun[] = [];
    let matched = true;
    let growths = 0;
    for (const asked of runs) {
      let left = asked;
      while (left > 0) {
        // The next piece must not continue the frame the last one ended on.
        const last = pieces[pieces.length - 1];
        const after = last === undefined ? -1 : last.frame + last.pages;
        const pick = pickRun(free, left, after);
        if (pick !== null && free[pick]!.pages >= left) {
          pieces.push(take(free, pick, left));
          left = 0;
        } else if (growths < POOL_GROWTHS) {
          growths++;
          if (!grow(1)) return null;
        } else {
          // No run long enough: the longest there is, and the rest as further runs.
          if (pick === null) return null;
          matched = false;
          const length = free[pick]!.pages;
          pieces.push(take(free, pick, length));
          left -= length;
        }
      }
    }

    // From here the pool's views point at pages that have moved: the pool is only released.
    const region = NativeRegion.movedPieces(
      pieces.map((piece) => ({ address: piece.address as Address, length: piece.pages * PAGE_SIZE })),
      what,
    );
    keepBasePages(region.address(0), region.length); // the moved pages keep the pool's advice otherwise: khugepaged could collapse them
    region.fill(0, region.length, 0);
    const made = physicalFrames(region.address(0), region.length);
    const laidOut = made === null ? [] : runLengths(made);
    matched &&= laidOut.length === runs.length && laidOut.every((run, i) => run === runs[i]);
    return { region, matched };
  } finally {
    for (const pool of pools) pool.release();
  }
}

/** `runs` cut, or extended by one more run, to cover exactly `pages` pages. */
export function fitRuns(runs: readonly number[], pages: number): number[] {
  const fitted: number[] = [];
  let left = pages;
  for (const run of runs) {
    if (left === 0) break;
    fitted.push(Math.min(run, left));
    left -= fitted[fitted.length - 1]!;
  }
  if (left > 0) fitted.push(left);
  return fitted;
}

/**
 * Index of the free run to take `pages` pages from, among those not starting at frame `after`:
 * the shortest that holds them all, else the longest there is (null: none left).
 */
function pickRun(free: readonly PoolRun[], pages: number, after: number): number | null {
  let best: number | null = null;
  for (let i = 0; i < free.length; i++) {
    const run = free[i]!;
    if (run.pages === 0 || run.frame === after) continue;
    if (best === null) {
      best = i;
      continue;
    }
    const bestPages = free[best]!.pages;
    // A run that holds them all beats one that does not; among those that do the shorter wins, among the others the longer.
    if (run.pages >= pages ? bestPages < pages || run.pages < bestPages : bestPages < pages && run.pages > bestPages) best = i;
  }
  return best;
}

/** Takes the first `pages` pages of free run `index`, and leaves the page after them out. */
function take(free: PoolRun[], index: number, pages: number): PoolRun {
  const run = free[index]!;
  const piece = { address: run.address, frame: run.frame, pages };
  const used = Math.min(run.pages, pages + 1);
  run.address += used * PAGE_SIZE;
  run.frame += used;
  run.pages -= used;
  return piece;
}
