/**
 * The planner against the kernel itself: random IOs (1 to 4 segments, random GPN lists,
 * offsets and lengths aligned and not, reads and writes) are planned, and the same iovecs are
 * handed to the kernel in forced direct mode, on every disk kind this machine can make
 * (`measure/kernel-oracle.ts`; the loop-device and filesystem kinds need root and skip, saying
 * why, without it). Every IO the kernel takes is verified byte for byte there.
 *
 * Each IO goes to the kernel as user iovecs and again as io_uring fixed buffers (the guest memory
 * registered), which the kernel checks differently: both are held to the same requirements. An
 * IO of one iovec goes a third time as io_uring READ/WRITE of that buffer (`--nonvectored`),
 * which must be judged as preadv/pwritev judged it.
 *
 * Required: no unsound decision under either rule set (planner direct, kernel refuses); under
 * the kernel rule, no copy where the documented rule takes the IO directly; and the simulated
 * disk's model of this kernel (what `--align` answers) agrees with the kernel on every IO.
 */
import { describe, expect, test } from "bun:test";
import { availableDisks, formatReport, runOracle } from "../measure/kernel-oracle";
import { vectoredFixedBuffers } from "../src/io/engines";

const { disks, skipped } = availableDisks();

describe("the kernel as judge of the planner", () => {
  for (const disk of disks) {
    const name = `${disk.kind}${disk.sector === undefined ? "" : ` (${disk.sector}-byte sectors)`}`;
    test(`${name}: no unsound decision, no copy the documented rule does not ask for, the simulated disk agrees`, async () => {
      const report = await runOracle(disk, 400, 0x51 + disk.kind.length * 7 + (disk.sector ?? 0));
      const summary = formatReport(report);
      expect(report.ios).toBeGreaterThan(300);
      expect({ summary, unsound: [report.rules.kernel.unsound, report.rules.seed.unsound] }).toEqual({ summary, unsound: [0, 0] });
      expect({ summary, copied: report.rules.kernel.copiedWhereDocumentedTakes }).toEqual({ summary, copied: 0 });
      expect({ summary, model: report.model }).toEqual({ summary, model: { refusedButKernelTook: 0, tookButKernelRefused: 0 } });
      // The same IOs as io_uring fixed buffers, every call fixed: no plan the kernel refuses, and
      // the model with the fixed-buffer checks gives the kernel's verdict.
      const fixed = report.fixed;
      expect({ summary, fixed: { unsound: fixed.unsound, model: fixed.model, notFixed: fixed.notFixed } }).toEqual({
        summary,
        fixed: { unsound: { kernel: 0, seed: 0 }, model: { refusedButKernelTook: 0, tookButKernelRefused: 0 }, notFixed: vectoredFixedBuffers() ? 0 : fixed.notFixed },
      });
      expect(fixed.calls).toBeGreaterThan(vectoredFixedBuffers() ? report.ios - 1 : 0);
      // The IOs of one iovec as io_uring READ/WRITE: judged as preadv/pwritev judged them, which
      // is how the simulated disk judges --nonvectored calls.
      const single = report.nonvectored;
      expect({ summary, differs: single.differsFromVectored }).toEqual({ summary, differs: 0 });
      expect(single.ios).toBeGreaterThan(50);
      expect(single.calls).toBeGreaterThanOrEqual(single.ios);
      // The kernel rule never copies more than the seed rule's audit.
      expect(report.rules.kernel.copiedBytes).toBeLessThanOrEqual(report.rules.seed.copiedBytes);
    });
  }
  for (const line of skipped) test.skip(`${line} (skipped)`, () => {});
});
