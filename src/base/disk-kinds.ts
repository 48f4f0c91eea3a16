/**
 * The kinds of disk bounce-bench can make for an experiment (`host/scratch-disks` makes them),
 * named here with no native code, for the command line and the scenario parser:
 *
 *   file     a file on the temporary directory's filesystem (the default)
 *   loop     a loop device over a scratch file: a real block device of 512 or 4096-byte sectors
 *   ext4, xfs, btrfs
 *            that filesystem on such a loop device; the disk is a file on it
 *   tmpfs    a tmpfs; the disk is a file on it
 */
export type DiskKind = "file" | "loop" | "ext4" | "xfs" | "btrfs" | "tmpfs";
export const DISK_KINDS: readonly DiskKind[] = ["file", "loop", "ext4", "xfs", "btrfs", "tmpfs"];

/** Logical sector sizes of the loop devices made (`losetup --sector-size`). */
export const SECTOR_SIZES = [512, 4096] as const;
export type SectorSize = (typeof SECTOR_SIZES)[number];

/** Whether a disk of `kind` sits on a loop device made for it, whose sector size can be chosen. */
export function hasOwnSectors(kind: DiskKind): boolean {
  return kind !== "file" && kind !== "tmpfs";
}
