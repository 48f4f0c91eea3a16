/**
 * What a run is about to take from the host, against what the host has: memory (guest memory
 * in memfd or huge pages, a tmpfs disk) against `MemAvailable`, and space (a disk file it will
 * fill, a loop device's backing file, guest memory in a file) against what the filesystem that
 * will hold it has free. Checked before anything is made or filled, so that a `--size` larger
 * than the host is refused with the figures instead of filling a shared root filesystem or
 * waking the OOM killer; `--no-resource-check` lets the run try anyway.
 */
import { accessSync, constants, readFileSync, statfsSync, statSync } from "node:fs";
import { InvalidInputError } from "../base/errors";

/** One thing a run will take: `bytes` of memory, or of space on the filesystem holding `where`. */
export interface Need {
  what: string;
  bytes: number;
  /** A path on the filesystem the space is taken from; absent for memory. */
  where?: string;
}

/** A figure in the unit that shows it: GiB from 1 GiB, MiB below (a 64 KiB guest is 0.1 MiB, not 0.0 GiB). */
function amount(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
const describe = (needs: readonly Need[]) => needs.map((need) => `${need.what}: ${amount(need.bytes)}`).join(", ");

/** Bytes of memory the kernel can give without swapping (`MemAvailable`), or null when it does not say. */
export function availableMemory(): number | null {
  try {
    const match = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"));
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

/**
 * Bytes free to this user on the filesystem holding `path`, or null when it cannot be asked, or
 * when the filesystem is read-only (its 0 free bytes are not the problem: making the first file
 * there says EROFS).
 */
export function availableSpace(path: string): number | null {
  try {
    accessSync(path, constants.W_OK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EROFS") return null;
  }
  try {
    const status = statfsSync(path);
    return status.bavail * status.bsize;
  } catch {
    return null;
  }
}

/**
 * Refuses `needs` that do not fit (memory needs together against `MemAvailable`; space needs on
 * one filesystem together against its free space), naming the figures and `--no-resource-check`.
 */
export function checkResources(needs: readonly Need[]): void {
  const memory = needs.filter((need) => need.where === undefined && need.bytes > 0);
  const total = memory.reduce((sum, need) => sum + need.bytes, 0);
  const available = availableMemory();
  if (memory.length > 0 && available !== null && total > available) {
    throw new InvalidInputError(
      `the run needs ${amount(total)} of memory (${describe(memory)}); ${amount(available)} is available (MemAvailable): use a smaller size, or --no-resource-check to try anyway`,
    );
  }
  const bySpace = new Map<string, { device: string; needs: Need[] }>();
  for (const need of needs) {
    if (need.where === undefined || need.bytes <= 0) continue;
    let device: string;
    try {
      device = String(statSync(need.where).dev); // the filesystem holding it
    } catch {
      continue;
    }
    const entry = bySpace.get(device) ?? { device, needs: [] };
    entry.needs.push(need);
    bySpace.set(device, entry);
  }
  for (const { needs: onOne } of bySpace.values()) {
    const sum = onOne.reduce((acc, need) => acc + need.bytes, 0);
    const free = availableSpace(onOne[0]!.where!);
    if (free !== null && sum > free) {
      throw new InvalidInputError(
        `the run needs ${amount(sum)} on the filesystem of ${onOne[0]!.where} (${describe(onOne)}); ${amount(free)} is free there: use a smaller size, or --no-resource-check to try anyway`,
      );
    }
  }
}
