/**
 * Other VMMs' bounce policies, as rule sets the planner can decide by (`--rules qemu`,
 * `cloud-hypervisor`, `openvmm`). Each VMM hands the kernel one iovec per descriptor run (its
 * guest memory is mapped linearly, so a run of consecutive guest pages is one iovec), judges
 * the request by its own alignments, and, when any iovec misses them, copies the WHOLE request
 * through an aligned buffer; a disk range that misses its request alignment is padded to it
 * (read-modify-write for writes). What each uses, read in its source (files and commits in
 * docs/kernel-rules.md):
 *
 *   qemu              block/file-posix.c: memory `buf_align` and request alignment found by
 *                     `raw_probe_alignment` (the logical block, XFS_IOC_DIOINFO, or direct
 *                     *reads* of growing length); every iovec's base a multiple of the memory
 *                     alignment and its length of the request alignment (`bdrv_qiov_is_aligned`)
 *   cloud-hypervisor  block/src/lib.rs `probe_direct_alignment`: max(stx_dio_mem_align,
 *                     stx_dio_offset_align), 512 without statx; the read alignment is never
 *                     asked; every iovec's base and length, and the offset, multiples of it
 *   openvmm           disk_blockdevice: the logical block size from sysfs for a block device,
 *                     and 512 for every regular file whatever its filesystem; the request's
 *                     buffers as one range, `(offset | len | 4096) & (a - 1) == 0`; the disk
 *                     range is whole sectors of that size, never the file's own block
 *
 * Here a "request" is the IO's segments; each segment is one guest descriptor chain element.
 */
import { blockSize, type DiskAlignment, type RuleSet } from "./alignment-rules";

export type VmmPolicy = Extract<RuleSet, "qemu" | "cloud-hypervisor" | "openvmm">;
export const VMM_POLICIES: readonly VmmPolicy[] = ["qemu", "cloud-hypervisor", "openvmm"];

/** The sector OpenVMM and cloud-hypervisor assume where they know no better. */
const ASSUMED_SECTOR = 512;

/** What a policy holds one request to, on a disk of `alignment`. */
export interface PolicyAlignment {
  /** Every iovec's (openvmm: every segment's) address a multiple of this. */
  memAlign: number;
  /** Every iovec's (openvmm: every segment's) length a multiple of this. */
  lengthUnit: number;
  /** The disk offset and length a multiple of this, else padded to it. */
  request: number;
  /** openvmm judges each segment as one range (page offset and length), not its iovecs. */
  perSegment: boolean;
  /** Where the numbers come from, for reasons. */
  from: string;
}

export function isVmmPolicy(rules: string): rules is VmmPolicy {
  return (VMM_POLICIES as readonly string[]).includes(rules);
}

/**
 * The alignments `policy` holds an IO of `op` to on a disk of `alignment` (on a block device,
 * `alignment.blockDevice`, OpenVMM asks sysfs instead of assuming 512).
 */
export function policyAlignment(policy: VmmPolicy, alignment: DiskAlignment, op: "read" | "write"): PolicyAlignment {
  switch (policy) {
    case "qemu": {
      // Probed with reads: the request alignment is what reads need, for writes too.
      const request = blockSize(alignment, "read");
      return { memAlign: Math.max(1, alignment.memAlign), lengthUnit: request, request, perSegment: false, from: `QEMU's probed memory alignment ${alignment.memAlign} and request alignment ${request} (probed with reads)` };
    }
    case "cloud-hypervisor": {
      // statx's numbers wherever the disk has them (a probed disk is one whose statx said nothing).
      const a = alignment.source === "probe" ? ASSUMED_SECTOR : Math.max(1, alignment.memAlign, alignment.offsetAlign);
      return { memAlign: a, lengthUnit: a, request: a, perSegment: false, from: `cloud-hypervisor's alignment ${a} (max of statx's memory and offset alignments; reads' own never asked)` };
    }
    case "openvmm": {
      const device = alignment.blockDevice === true;
      const a = device ? blockSize(alignment, op) : ASSUMED_SECTOR;
      return { memAlign: a, lengthUnit: a, request: a, perSegment: true, from: device ? `OpenVMM's sector size ${a} (the device's logical block)` : `OpenVMM's sector size ${a} (assumed for every file)` };
    }
  }
}
