/**
 * Where a sweep runs, as its report's header says: the machine (kernel, CPU), the disk (its path,
 * kind, size and alignment, as the kernel reports it and as planned against), the memory behind
 * guest and bounce buffers, and whether writes take cross-process locks.
 */
import { cpus, release } from "node:os";
import type { DiskKind, SectorSize } from "../base/disk-kinds";
import { blockLimits } from "../disk/block-limits";
import type { MeasuredKernelChecks } from "../disk/direct-io-probe";
import { vectoredFixedBuffers } from "../io/engines";
import { alignmentJson, type AlignmentJson } from "../io/json-documents";
import { statx } from "../native";
import type { CopyRate } from "./copy-rates";
import { bounceOnHugePages, transparentHugePageMode, type BouncePages, type GuestBacking } from "./guest-backing";
import type { BenchWorkspace } from "./workspace";

export interface HostInfo {
  kernel: string;
  cpu: string;
  cpus: number;
  filesystem: string | null;
  /** The disk's path: the user's, or the scratch disk's (gone after the run: `scratch`). */
  disk: string;
  /** Whether the disk was a scratch disk made for the run (its kind is `diskKind`). */
  scratch: boolean;
  diskSize: number;
  /** The kind of scratch disk made (`--disk-kind`) and its sector size; null for a disk the user named. */
  diskKind: DiskKind | null;
  sector: SectorSize | null;
  /** The disk's alignment as the kernel reports it, and the one planned against (override). */
  diskAlignment: AlignmentJson;
  planAlignment: AlignmentJson;
  /** @deprecated schema 1's name for `diskAlignment`, kept for one version */
  alignment: AlignmentJson;
  /** Bytes of guest memory on huge pages at the end of the sweep (transparent or hugetlb). */
  guestHugePageBytes: number;
  /** The kernel's transparent huge page mode (`always`, `madvise`, `never`), null if unknown. */
  transparentHugePages: string | null;
  /** What backs guest memory (`file` for the user's `--guest`), and whether bounce buffers asked for huge pages. */
  guestBacking: GuestBacking;
  bounceHugePages: boolean;
  /** DMA segments the disk's block device takes in one request (`queue/max_segments`), or null. */
  maxSegments: number | null;
  /** The bounce copy's rate against the source-destination distance here (`copy-rates.ts`); null when no case may bounce. */
  copyRates: CopyRate[] | null;
  /**
   * What the running kernel was measured to check on the real disk beyond the documented rule,
   * which the simulated disk (`--align`, `--mem-align`) answers by; null without a simulated disk.
   */
  kernelChecks: MeasuredKernelChecks | null;
  /** Whether writes took cross-process locks on the disk file, and why (`fileLocks`). */
  fileLocks: { on: boolean; why: string };
  /** Whether this kernel's io_uring has READV_FIXED/WRITEV_FIXED (`--fixedbufs` with several iovecs). */
  readvFixed: boolean;
}

/** Where a run happens: the machine, the disk and its alignment. */
export function describeHost(workspace: BenchWorkspace, bouncePages: BouncePages = "same", fileLocks?: boolean): HostInfo {
  const disk = workspace.disk;
  const cpu = cpus();
  return {
    kernel: release(),
    cpu: cpu[0]?.model.trim() ?? "unknown",
    cpus: cpu.length,
    filesystem: disk.fsType ?? null,
    disk: workspace.diskPath,
    scratch: workspace.scratch !== null,
    diskKind: workspace.scratch?.kind ?? null,
    sector: workspace.scratch?.sector ?? null,
    diskSize: workspace.diskSize,
    diskAlignment: alignmentJson(disk.discovered),
    alignment: alignmentJson(disk.discovered),
    planAlignment: alignmentJson(disk.alignment),
    transparentHugePages: transparentHugePageMode(),
    guestBacking: workspace.guestBacking,
    guestHugePageBytes: workspace.guestHugePageBytes(),
    bounceHugePages: bounceOnHugePages(workspace.guestBacking, bouncePages),
    maxSegments: blockLimits(statx(disk.fd))?.maxSegments ?? null,
    copyRates: null,
    kernelChecks: disk.alignment.source === "override" ? disk.kernelChecks : null,
    fileLocks: fileLocksOf(workspace, fileLocks),
    readvFixed: vectoredFixedBuffers(),
  };
}

/** Whether a run's writes take cross-process locks (`BenchOptions.fileLocks`), and why. */
function fileLocksOf(workspace: BenchWorkspace, asked: boolean | undefined): { on: boolean; why: string } {
  if (workspace.scratch !== null) return { on: false, why: "a scratch disk no other process can reach" };
  if (asked === false) return { on: false, why: "--no-file-locks: writes of another process to this disk may be lost under a read-modify-write" };
  return { on: true, why: "a disk other processes may write: every write is ordered against their read-modify-writes" };
}
