/**
 * The arithmetic of direct-IO alignment, with no IO and no native code: what a disk's alignment
 * is (`DiskAlignment`), the granularity an IO of each direction must meet, and why a buffer
 * misses it. The planner, the scenario parser and the command line decide with these alone,
 * so importing them loads no libc; discovering a real disk's alignment is `disk/alignment.ts`.
 *
 *   memAlign         every iovec's address is a multiple of it
 *   offsetAlign      file offsets and lengths of writes (and of reads, unless:)
 *   readOffsetAlign  file offsets and lengths of reads, where the filesystem relaxes them
 */
import { PAGE_SIZE } from "./constants";
import { InvalidAlignmentError, InvalidInputError } from "./errors";

/** Where an alignment came from; `default` is `plan`'s 4096 when no disk is named. */
export type AlignmentSource = "statx" | "blksszget" | "probe" | "override" | "default";

export interface DiskAlignment {
  /** Whether the kernel does direct IO on this file at all. */
  directIo: boolean;
  /** Alignment of buffer addresses in memory. */
  memAlign: number;
  /** Alignment of file offsets and lengths for writes (and reads, unless `readOffsetAlign` differs). */
  offsetAlign: number;
  /** Alignment of file offsets and lengths for reads. */
  readOffsetAlign: number;
  source: AlignmentSource;
  /** How the source got its answer, for reports ("STATX_DIOALIGN", "empty file: ..."). */
  note?: string;
  /** Where each value came from, when finer than `source` ("statx STATX_DIO_READ_ALIGN ..."). */
  sources?: AlignmentSources;
  /** The disk is a block device, not a file (some VMMs' policies treat the two apart). */
  blockDevice?: boolean;
}

/** Where each of a disk's alignment values came from, in words a report can print. */
export interface AlignmentSources {
  memAlign: string;
  offsetAlign: string;
  readOffsetAlign: string;
}

/** Each value's source: the recorded one, or the alignment's `source` for all. */
export function alignmentSources(alignment: DiskAlignment): AlignmentSources {
  if (alignment.sources !== undefined) return alignment.sources;
  const all = alignment.source === "default" ? "default (no disk named: a 4 KiB-sector disk with the common 512-byte DMA alignment)" : alignment.source;
  return { memAlign: all, offsetAlign: all, readOffsetAlign: all };
}

/** Largest alignment a user may simulate (`--align`). */
export const MAX_SIMULATED_ALIGNMENT = 2 ** 20;

/** True for 1, 2, 4, ... 2^52. */
export function isPowerOfTwo(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0 && 2 ** Math.round(Math.log2(value)) === value;
}

/** @throws InvalidAlignmentError unless `alignment` is a positive power of two. */
export function checkAlignment(alignment: number): void {
  if (!isPowerOfTwo(alignment)) throw new InvalidAlignmentError(alignment);
}

/**
 * Why buffers at page offset `offset` and length `len` are not aligned to `alignment`, one
 * reason per violated condition; empty when they are.
 */
export function memoryAlignmentReasons(offset: number, len: number, alignment: number): string[] {
  checkAlignment(alignment);
  const reasons: string[] = [];
  if (alignment > PAGE_SIZE) {
    reasons.push(
      `alignment ${alignment} exceeds the page size ${PAGE_SIZE}: interior page boundaries are not contiguous in host memory`,
    );
  }
  if (offset % alignment !== 0) reasons.push(`memory offset ${offset} is not a multiple of ${alignment}`);
  if (len % alignment !== 0) reasons.push(`buffer length ${len} is not a multiple of ${alignment}`);
  return reasons;
}

/**
 * The rule sets a plan can be decided by (`--rules`):
 *
 *   kernel  the kernel's documented rule (statx(2), `STATX_DIOALIGN`), applied to the iovecs
 *           the IO hands over: every iovec's address a multiple of `memAlign` and its length a
 *           multiple of the direction's offset alignment; the disk offset and total length
 *           multiples of the offset alignment.
 *   seed    the reference crate's rule: each segment's page offset and length multiples of the
 *           larger of the memory and offset alignments. Stricter than the kernel's (a 4 KiB-sector
 *           disk with 512-byte DMA alignment takes a buffer at offset 512 directly, the seed
 *           rule copies it); kept to show what it costs.
 *   qemu, cloud-hypervisor, openvmm
 *           those VMMs' policies, as their sources decide (`vmm-policies.ts`): each checks the
 *           iovecs of each descriptor against its own alignments and copies the whole request
 *           when one misses them. Some send IO this kernel refuses: a finding, not a bug here.
 */
export type RuleSet = "kernel" | "seed" | "qemu" | "cloud-hypervisor" | "openvmm";
/** The rule sets, the kernel's first; `qemu`, `cloud-hypervisor` and `openvmm` are those VMMs' policies (`vmm-policies.ts`). */
export const RULE_SETS: readonly RuleSet[] = ["kernel", "seed", "qemu", "cloud-hypervisor", "openvmm"];

/**
 * The one alignment the seed rule checks each segment against for an IO of direction `op`:
 * the larger of the memory and offset alignments. At least 1.
 */
export function requestAlignment(alignment: DiskAlignment, op: "read" | "write"): number {
  return Math.max(1, alignment.memAlign, blockSize(alignment, op));
}

/** The disk offset and length granularity for `op`. At least 1. */
export function blockSize(alignment: DiskAlignment, op: "read" | "write"): number {
  return Math.max(1, op === "read" ? alignment.readOffsetAlign : alignment.offsetAlign);
}

/**
 * Why an iovec of guest memory (at guest physical `address`) breaks the kernel's documented
 * rule, or null when it meets it.
 */
export function iovecProblem(address: number, len: number, alignment: DiskAlignment, op: "read" | "write"): string | null {
  const memAlign = Math.max(1, alignment.memAlign);
  const block = blockSize(alignment, op);
  if (memAlign > PAGE_SIZE) return `the memory alignment ${memAlign} exceeds the page size ${PAGE_SIZE}: guest memory is only page-aligned in the host`;
  if (address % memAlign !== 0) return `address 0x${address.toString(16)} is not a multiple of the memory alignment ${memAlign}`;
  if (len % block !== 0) return `length ${len} is not a multiple of the ${block}-byte block`;
  return null;
}

/**
 * What a kernel checks of a direct IO's iovecs beyond the disk range, where it is laxer than
 * the documented rule (statx(2): every iovec's address a multiple of the memory alignment and
 * its length a multiple of the block). Both differ by kernel build and by the storage stack
 * under the file (a 6.18 stable backport took the second away on loop devices and filesystems
 * over them, not on ext4 over virtio), so the running kernel's are measured on the disk at hand
 * (`measureKernelChecks` in `disk/direct-io-probe.ts`), never inferred from the release.
 *
 *   lengthsByMemory    each iovec's length need only be a multiple of the memory alignment,
 *                      as long as the call is whole blocks (Linux 6.0 to 6.17 want whole
 *                      blocks per iovec)
 *   onePageAnyAddress  a call whose memory is one range inside one page (iovecs that continue
 *                      one another count as one) is taken at any address
 */
export interface KernelChecks {
  lengthsByMemory: boolean;
  onePageAnyAddress: boolean;
}

/** The documented rule, nothing laxer: what a disk whose checks could not be measured is held to. */
export const DOCUMENTED_CHECKS: KernelChecks = { lengthsByMemory: false, onePageAnyAddress: false };

/**
 * What a disk of `alignment` answers to one vectored call on a kernel with `checks`: the
 * problem it refuses the call for (EINVAL), or null when it takes it. This is what `--align`'s
 * simulated disk answers, so that it refuses what a real disk of that kind refuses here.
 */
export function simulatedDiskProblem(
  diskOffset: number,
  bytes: number,
  iovecs: { count: number; base(i: number): number; length(i: number): number },
  first: number,
  alignment: DiskAlignment,
  op: "read" | "write",
  checks: KernelChecks,
): string | null {
  const block = blockSize(alignment, op);
  if (diskOffset % block !== 0 || bytes % block !== 0) return `disk range ${diskOffset}+${bytes} is not whole ${block}-byte blocks`;
  if (checks.onePageAnyAddress && isOnePage(iovecs, first)) return null;
  const memAlign = Math.max(1, alignment.memAlign);
  const lengthUnit = checks.lengthsByMemory ? memAlign : block;
  for (let i = 0; i < iovecs.count; i++) {
    const base = iovecs.base(first + i);
    const len = iovecs.length(first + i);
    const where = `iovec ${i} (${len} bytes at memory offset ${base % PAGE_SIZE} in its page)`;
    if (base % memAlign !== 0) return `${where}: the address is not a multiple of the memory alignment ${memAlign}`;
    if (len % lengthUnit !== 0) return `${where}: the length is not a multiple of ${lengthUnit}`;
  }
  return null;
}

/** Whether a call's iovecs, each continuing the one before, make one range inside one page. */
function isOnePage(iovecs: { count: number; base(i: number): number; length(i: number): number }, first: number): boolean {
  const start = iovecs.base(first);
  let end = start;
  for (let i = 0; i < iovecs.count; i++) {
    if (iovecs.base(first + i) !== end) return false;
    end += iovecs.length(first + i);
  }
  return Math.floor(start / PAGE_SIZE) === Math.floor((end - 1) / PAGE_SIZE);
}

/** The DMA alignment of common disks (virtio-blk, SCSI, loop devices): what a disk nobody named is assumed to ask of memory. */
export const COMMON_DMA_ALIGNMENT = 512;

/**
 * The alignment assumed when no disk is named: a 4 KiB-sector disk with the common 512-byte
 * memory alignment, which every common disk's rules are no stricter than.
 */
export const DEFAULT_ALIGNMENT: DiskAlignment = {
  directIo: true,
  memAlign: COMMON_DMA_ALIGNMENT,
  offsetAlign: 4096,
  readOffsetAlign: 4096,
  source: "default",
};

/**
 * A simulated disk (`--align N`, `--mem-align M`): N-byte blocks (offsets and lengths) and
 * memory alignment M, by default the real disk's (`base`) memory alignment, as a real disk
 * with N-byte sectors has (its memory alignment is its DMA alignment, not its sector size);
 * with no real disk, the smaller of N and the common 512. A simulated disk may only be
 * stricter than the real one it runs on: a smaller value would send IO the real disk refuses,
 * so it is bad input naming both.
 */
export function overrideAlignment(base: DiskAlignment | null, align: number | undefined, memAlign?: number): DiskAlignment {
  if (align !== undefined) checkAlignment(align);
  if (memAlign !== undefined) checkAlignment(memAlign);
  const real = base !== null && base.source !== "default" && base.directIo ? base : null;
  if (real !== null) {
    const realBlock = Math.max(real.offsetAlign, real.readOffsetAlign);
    if (align !== undefined && align < realBlock) {
      throw new InvalidInputError(
        `--align ${align} is below the disk's own block (offset alignment ${realBlock}, from ${real.source}): a simulated disk may only be stricter than the real one`,
      );
    }
    if (memAlign !== undefined && memAlign < real.memAlign) {
      throw new InvalidInputError(
        `--mem-align ${memAlign} is below the disk's own memory alignment ${real.memAlign} (from ${real.source}): a simulated disk may only be stricter than the real one`,
      );
    }
  }
  const offsetAlign = align ?? base?.offsetAlign ?? DEFAULT_ALIGNMENT.offsetAlign;
  const readOffsetAlign = align ?? base?.readOffsetAlign ?? DEFAULT_ALIGNMENT.readOffsetAlign;
  const defaultMem = real !== null ? real.memAlign : Math.min(offsetAlign, base?.memAlign ?? COMMON_DMA_ALIGNMENT);
  const from = alignmentSources(base ?? DEFAULT_ALIGNMENT);
  const sources: AlignmentSources = {
    memAlign: memAlign !== undefined ? "override (--mem-align)" : real !== null ? `the real disk's: ${from.memAlign}` : `min(--align, ${from.memAlign})`,
    offsetAlign: align !== undefined ? "override (--align)" : from.offsetAlign,
    readOffsetAlign: align !== undefined ? "override (--align)" : from.readOffsetAlign,
  };
  return { directIo: base?.directIo ?? true, memAlign: memAlign ?? defaultMem, offsetAlign, readOffsetAlign, source: "override", sources, ...(base?.blockDevice === true ? { blockDevice: true } : {}) };
}

/** Checks a user-given `--align` value. */
export function parseAlignment(value: number, what: string): number {
  if (!isPowerOfTwo(value)) throw new InvalidInputError(`${what}: alignment ${value} is not a power of two`);
  if (value > MAX_SIMULATED_ALIGNMENT) throw new InvalidInputError(`${what}: alignment ${value} is larger than 1 MiB`);
  return value;
}
