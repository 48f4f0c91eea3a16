/**
 * What backs the bench's guest memory (`--guest-backing`), and the page size its bounce buffers
 * get, so that "bounce vs direct" compares like with like:
 *
 *   memfd    shmem on 4 KiB pages, as most VMMs back guest RAM (the default)
 *   file     an unnamed file on the system temporary directory's filesystem (page cache pages)
 *   thp      anonymous memory on transparent huge pages (2 MiB), mapped once by the main thread
 *            and used by the IO Workers at the same address
 *   hugetlb  a hugetlbfs memfd on 2 MiB pages from the reserved pool (vm.nr_hugepages)
 *
 * Direct IO into memory on huge pages needs fewer DMA segments, so bounce buffers on huge pages
 * next to guest memory on 4 KiB pages make bouncing look cheaper than it is. By default
 * (`--bounce-pages same`) bounce buffers get the guest's page size: huge pages for `thp` and
 * `hugetlb`, base pages otherwise.
 */
import { readFileSync } from "node:fs";

export type GuestBacking = "memfd" | "file" | "thp" | "hugetlb";
export const GUEST_BACKINGS: readonly GuestBacking[] = ["memfd", "file", "thp", "hugetlb"];

export type BouncePages = "same" | "4k" | "thp";
export const BOUNCE_PAGES: readonly BouncePages[] = ["same", "4k", "thp"];

/** Huge pages hugetlb guest memory is made of. */
export const HUGETLB_PAGE_SIZE = 2 * 2 ** 20;

/** Whether a guest on `backing` sits on huge pages. */
export function guestOnHugePages(backing: GuestBacking): boolean {
  return backing === "thp" || backing === "hugetlb";
}

/** Whether bounce buffers ask for transparent huge pages, given the guest's backing and `--bounce-pages`. */
export function bounceOnHugePages(backing: GuestBacking, pages: BouncePages): boolean {
  return pages === "same" ? guestOnHugePages(backing) : pages === "thp";
}

/**
 * Why `backing` cannot give `bytes` of guest memory here, or null when it can: `thp` needs the
 * kernel's THP mode to be `always` or `madvise`; `hugetlb` needs that many free reserved pages.
 */
export function guestBackingUnavailable(backing: GuestBacking, bytes: number): string | null {
  if (backing === "thp") {
    const mode = transparentHugePageMode();
    if (mode === "never" || mode === null) return `transparent huge pages are ${mode ?? "not available"} here (/sys/kernel/mm/transparent_hugepage/enabled)`;
  }
  if (backing === "hugetlb") {
    const free = hugetlbFreePages();
    const needed = Math.ceil(bytes / HUGETLB_PAGE_SIZE);
    if (free < needed) {
      return `it needs ${needed} free 2 MiB huge pages and ${free} are reserved and free (as root: sysctl vm.nr_hugepages=${needed})`;
    }
  }
  return null;
}

/** The bracketed choice in /sys/kernel/mm/transparent_hugepage/enabled (`always`, `madvise`, `never`), or null. */
export function transparentHugePageMode(): string | null {
  try {
    return /\[(\w+)\]/.exec(readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8"))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** Free pages in the default (2 MiB) hugetlb pool, from /proc/meminfo; 0 when unknown. */
function hugetlbFreePages(): number {
  try {
    const meminfo = readFileSync("/proc/meminfo", "utf8");
    const size = Number(/^Hugepagesize:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? 0) * 1024;
    if (size !== HUGETLB_PAGE_SIZE) return 0;
    return Number(/^HugePages_Free:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0);
  } catch {
    return 0;
  }
}
