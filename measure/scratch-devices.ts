/**
 * Scratch devices the measuring scripts make for themselves (root only): a loop device over a
 * file on a scratch tmpfs, a real block device (the block layer, the loop driver) with no device
 * behind it, so that figures carry no device noise; and a file on a scratch tmpfs for two tools
 * to map as the same memory. Made with `ScratchDisk` (so a crashed run's leftovers are
 * reclaimed), filled with data, and removed, device first, by `remove`.
 */
import { fillDisk } from "../src/bench/workspace";
import { ScratchDisk } from "../src/host/scratch-disks";

export interface ScratchDevice {
  /** The loop device, or the file. */
  path: string;
  /** Detaches the loop device (if any), then unmounts the tmpfs. Idempotent. */
  remove(): void;
}

/** A loop device of `bytes` over a file on a tmpfs of its own, filled with data. */
export async function loopOverTmpfs(bytes: number): Promise<ScratchDevice> {
  // The tmpfs holds the loop device's backing file; its own disk file stays a hole.
  const tmpfs = ScratchDisk.make({ kind: "tmpfs", size: bytes });
  let loop: ScratchDisk | null = null;
  const remove = () => {
    loop?.remove();
    tmpfs.remove();
  };
  try {
    loop = ScratchDisk.make({ kind: "loop", size: bytes, parent: tmpfs.mountPoint! });
    await fillDisk(loop.path, bytes);
    return { path: loop.path, remove };
  } catch (error) {
    remove();
    throw error;
  }
}

/**
 * A file of `bytes` on a tmpfs of its own, its pages allocated (filled with data): memory that
 * two tools, one after the other, map shared, so that both do their IO into the same physical
 * pages. Which frames a buffer gets decides how many DMA segments its IO makes, and on a virtual
 * disk how the request travels (docs/performance.md); separate allocations would compare
 * allocators, not tools.
 */
export async function sharedMemoryFile(bytes: number): Promise<ScratchDevice> {
  const tmpfs = ScratchDisk.make({ kind: "tmpfs", size: bytes });
  const remove = () => tmpfs.remove();
  try {
    await fillDisk(tmpfs.path, bytes);
    return { path: tmpfs.path, remove };
  } catch (error) {
    remove();
    throw error;
  }
}
