/**
 * One guest write, planned and performed: 4 KiB of guest memory starting 8 bytes into GPN 0,
 * written to a disk file with O_DIRECT. The planner says the kernel would refuse the guest's
 * buffer as it is (its address is not a multiple of the disk's memory alignment), so the write
 * goes through a bounce buffer; the disk then holds the guest's bytes. README's library recipe.
 *
 *   npx bun examples/bounce-one-write.ts        (from the repository, after npm install)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Disk, executePlan, GuestMemory, PagedRange, plan } from "bounce-bench";

const dir = mkdtempSync(join(tmpdir(), "bounce-one-write-"));
try {
  writeFileSync(join(dir, "disk.img"), new Uint8Array(1 << 20));
  // README: from here
  using memory = GuestMemory.create(join(dir, "guest.img"), 1 << 20);
  memory.fill(8, 4096, 0x5a); // the guest's data
  using disk = Disk.open(join(dir, "disk.img"), { write: true, direct: true });
  const segments = [new PagedRange(8, 4096, [0, 1])]; // 4 KiB from 8 bytes into GPN 0
  const decided = plan({ op: "write", mode: "auto", at: 0, segments, alignment: disk.alignment });
  console.log(decided.decision, decided.reasons); // bounce, and why
  const done = await executePlan(decided, memory, disk);
  console.log(`${done.bytes} bytes written, ${done.copiedBytes} copied through a bounce buffer`);
  // README: to here
  const written = readFileSync(join(dir, "disk.img")).subarray(0, 4096);
  console.log(written.every((byte) => byte === 0x5a) ? "the disk holds the guest's bytes" : "MISMATCH");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
