/**
 * Other kernels' direct-IO rules, as what-ifs (`plan --kernel`, a scenario plan step's
 * `kernel`). A VMM ships to hosts with many kernels, and what the kernel takes directly changed
 * several times. Each named rule set is what a kernel of that line checks of one vectored call
 * on a disk whose logical block is B and whose DMA (memory) alignment is M:
 *
 *   5.19         before 6.0: every iovec's address and length a multiple of B (the block
 *                device and iomap checked `iov_iter_alignment` against the block)
 *   6.0          6.0 to 6.17: every iovec's address a multiple of M and its length of B; the
 *                rule statx(2) documents since 6.1 (`STATX_DIOALIGN`)
 *   6.18.0       6.18: only the file offset and total length checked up front (whole blocks);
 *                iovec addresses and lengths multiples of M, and one range inside one page
 *                taken at any address
 *   6.18-stable  later builds with the per-vector check restored ("block: validate user
 *                space vectors during extraction"): every iovec's address and length a
 *                multiple of M, the total whole blocks
 *   current      the running kernel on the disk at hand, measured (`measureKernelChecks`)
 *
 * Sources, with the commits that made each step, are in docs/kernel-rules.md. Every set is
 * `KernelChecks` plus whether memory is held to the block (before 6.0), so one function
 * (`simulatedDiskProblem`) answers for all of them and for the simulated disk.
 */
import { DOCUMENTED_CHECKS, simulatedDiskProblem, type DiskAlignment, type KernelChecks } from "./alignment-rules";
import { InvalidInputError } from "./errors";

export interface KernelRuleSet {
  name: string;
  /** The kernels it describes, for people. */
  kernels: string;
  checks: KernelChecks;
  /** Iovec addresses must be multiples of the logical block, not of the DMA alignment (before 6.0). */
  memoryIsBlock: boolean;
  /** The rule in one line. */
  rule: string;
}

export const KERNEL_RULE_SETS: readonly KernelRuleSet[] = [
  {
    name: "5.19",
    kernels: "before 6.0",
    checks: DOCUMENTED_CHECKS,
    memoryIsBlock: true,
    rule: "every iovec's address and length a multiple of the logical block",
  },
  {
    name: "6.0",
    kernels: "6.0 to 6.17",
    checks: DOCUMENTED_CHECKS,
    memoryIsBlock: false,
    rule: "every iovec's address a multiple of the DMA alignment and its length of the logical block (statx(2)'s rule)",
  },
  {
    name: "6.18.0",
    kernels: "6.18 before the per-vector check was restored",
    checks: { lengthsByMemory: true, onePageAnyAddress: true },
    memoryIsBlock: false,
    rule: "iovec addresses and lengths multiples of the DMA alignment, the whole IO whole blocks; one range inside one page at any address",
  },
  {
    name: "6.18-stable",
    kernels: "later 6.18 stable builds, and mainline since, with \"block: validate user space vectors during extraction\"",
    checks: { lengthsByMemory: true, onePageAnyAddress: false },
    memoryIsBlock: false,
    rule: "every iovec's address and length a multiple of the DMA alignment, the whole IO whole blocks",
  },
];

/** `--kernel` values: the named sets, `current` (measured) and `all`. */
export const KERNEL_CHOICES: readonly string[] = [...KERNEL_RULE_SETS.map((set) => set.name), "current", "all"];

/** The named rule set, or a clear error listing the names. */
export function kernelRuleSet(name: string): KernelRuleSet {
  const found = KERNEL_RULE_SETS.find((set) => set.name === name);
  if (found === undefined) throw new InvalidInputError(`kernel rule set "${name}" is not one of ${KERNEL_CHOICES.slice(0, -1).join(", ")}`);
  return found;
}

/** One vectored call as a kernel sees it: the disk range and each iovec's address and length. */
export interface KernelCall {
  diskOffset: number;
  bytes: number;
  iovecs: readonly { address: number; len: number }[];
}

/**
 * What a kernel with `checks` (memory held to the block when `memoryIsBlock`) answers to a
 * direct IO of these calls on a disk of `alignment`: the first problem it refuses the IO for
 * (EINVAL), or null when it takes every call. Addresses need only be right modulo the page.
 */
export function kernelProblem(
  calls: readonly KernelCall[],
  alignment: DiskAlignment,
  op: "read" | "write",
  checks: KernelChecks,
  memoryIsBlock = false,
): string | null {
  const held = memoryIsBlock ? { ...alignment, memAlign: Math.max(alignment.memAlign, op === "read" ? alignment.readOffsetAlign : alignment.offsetAlign) } : alignment;
  for (const [index, call] of calls.entries()) {
    const view = { count: call.iovecs.length, base: (i: number) => call.iovecs[i]!.address, length: (i: number) => call.iovecs[i]!.len };
    const problem = simulatedDiskProblem(call.diskOffset, call.bytes, view, 0, held, op, checks);
    if (problem !== null) return calls.length === 1 ? problem : `call ${index}: ${problem}`;
  }
  return null;
}
