/**
 * Reproduces a lost read-modify-write update in a few lines: two unaligned writes to the same
 * 512-byte block in flight at once on io_uring. Without range locks, both read the old block
 * and the second write puts back the bytes the first one wrote.
 *
 *   bun examples/lost-rmw-update.ts        (from the repository, after npm install)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Disk, executePlan, GuestMemory, IoQueue, PagedRange, plan, RangeLocks } from "bounce-bench";

const dir = mkdtempSync(join(tmpdir(), "lost-update-"));
try {
  for (const locks of [undefined, new RangeLocks()]) {
    using memory = GuestMemory.create(join(dir, "guest.img"), 1 << 20, { force: true });
    memory.fill(0, 4096, 0xaa); // GPN 0: the first write's data
    memory.fill(4096, 4096, 0xbb); // GPN 1: the second write's data
    writeFileSync(join(dir, "disk.bin"), new Uint8Array(1 << 20));
    using disk = Disk.open(join(dir, "disk.bin"), { write: true, direct: true });
    using queue = new IoQueue(8);
    const write = (gpn: number, at: number) => {
      const segments = [new PagedRange(0, 100, [gpn])];
      const decided = plan({ op: "write", mode: "auto", at, segments, alignment: disk.alignment });
      return executePlan(decided, memory, disk, { queue, locks });
    };
    await Promise.all([write(0, 10), write(1, 200)]); // both inside disk block 0..512, in flight together
    const bytes = readFileSync(join(dir, "disk.bin"));
    const lost = bytes[10] !== 0xaa || bytes[200] !== 0xbb;
    console.log(`${locks ? "with" : "without"} range locks: byte 10 = 0x${bytes[10]!.toString(16)}, byte 200 = 0x${bytes[200]!.toString(16)}${lost ? "  <- a write was lost" : ""}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
