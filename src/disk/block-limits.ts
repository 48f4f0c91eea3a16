/**
 * The block layer's limits for the device under a disk (the device itself, or the one the
 * disk's filesystem lives on), as sysfs reports them in `/sys/dev/block/MAJOR:MINOR/queue/`
 * (a partition's are its whole disk's, one directory up):
 *
 *   logical_block_size   offsets and lengths of direct IO are multiples of it
 *   dma_alignment        a mask: buffer addresses (and segment lengths) must be multiples of it + 1
 *   max_segments         DMA segments one request takes; more and the IO is split
 *   max_sectors_kb       KiB one request takes; more and the IO is split
 *
 * Null when the disk is not on a block device (tmpfs) or sysfs does not say.
 */
import { readFileSync } from "node:fs";
import type { FileStatus } from "../native";

export interface BlockLimits {
  /** `MAJOR:MINOR` of the device the limits are read from. */
  device: string;
  logicalBlockSize: number | null;
  /** Buffer address alignment in bytes (sysfs `dma_alignment` + 1). */
  dmaAlignment: number | null;
  maxSegments: number | null;
  maxSectorsKb: number | null;
}

export function blockLimits(status: FileStatus): BlockLimits | null {
  const device = status.type === "block-device" ? `${status.rdevMajor}:${status.rdevMinor}` : `${status.devMajor}:${status.devMinor}`;
  for (const queue of ["queue", "../queue"]) {
    const read = (name: string): number | null => {
      try {
        const value = Number(readFileSync(`/sys/dev/block/${device}/${queue}/${name}`, "utf8").trim());
        return Number.isFinite(value) ? value : null;
      } catch {
        return null;
      }
    };
    const logicalBlockSize = read("logical_block_size");
    if (logicalBlockSize === null) continue; // not this directory
    const mask = read("dma_alignment");
    return { device, logicalBlockSize, dmaAlignment: mask === null ? null : mask + 1, maxSegments: read("max_segments"), maxSectorsKb: read("max_sectors_kb") };
  }
  return null;
}
