/**
 * Which kernels would take an IO directly: the IO is planned in `direct` mode (the iovecs a VMM
 * that hands guest buffers straight over would send), and each kernel rule set (`base/kernel-
 * rules.ts`) judges its calls. `current` is the running kernel as measured on the disk at hand;
 * it can only be judged with a disk, and says so otherwise.
 */
import type { DiskAlignment } from "../base/alignment-rules";
import type { MeasuredKernelChecks } from "../disk/direct-io-probe";
import { KERNEL_RULE_SETS, kernelProblem, kernelRuleSet, type KernelCall } from "../base/kernel-rules";
import type { PagedRange } from "../memory/paged-range";
import { plan, type IoOp, type Plan } from "./planner";

export interface KernelVerdict {
  /** The rule set's name (`6.0`, ..., `current`). */
  kernel: string;
  /** The kernels it stands for. */
  kernels: string;
  rule: string;
  /** Whether it takes the IO directly; null when it could not be judged (`current` with no disk). */
  takes: boolean | null;
  /** Why it refuses (EINVAL), or why it could not be judged; null when it takes the IO. */
  problem: string | null;
}

/** The running kernel's checks on the disk, with how they were found (`measureKernelChecks`). */
export type CurrentChecks = Omit<MeasuredKernelChecks, "reads">;

/**
 * The calls of a plan, as the kernel sees them: guest physical addresses keep their page
 * offsets in the host, and the bounce buffer is page-aligned, so its offsets stand for its
 * addresses.
 */
export function kernelCalls(planned: Plan): KernelCall[] {
  return planned.calls.map((call) => ({
    diskOffset: call.diskOffset,
    bytes: call.bytes,
    iovecs: planned.iovecs
      .slice(call.firstIovec, call.firstIovec + call.iovecs)
      .map((iovec) => ({ address: iovec.kind === "guest" ? iovec.gpa : iovec.bufferOffset, len: iovec.len })),
  }));
}

/**
 * The verdict of each named kernel (`all`: every named set, then `current`) on a direct IO of
 * `segments` at `at` on a disk of `alignment`. `current` needs the disk's measured checks.
 */
export function kernelVerdicts(
  io: { op: IoOp; at: number; segments: readonly PagedRange[]; alignment: DiskAlignment },
  kernel: string,
  current: CurrentChecks | null,
): KernelVerdict[] {
  const names = kernel === "all" ? [...KERNEL_RULE_SETS.map((set) => set.name), "current"] : [kernel];
  const calls = kernelCalls(plan({ op: io.op, mode: "direct", at: io.at, segments: io.segments, alignment: io.alignment }));
  return names.map((name) => {
    if (name === "current") {
      const kernels = "the running kernel, measured on the disk";
      if (current === null) return { kernel: name, kernels, rule: "not measured", takes: null, problem: "not judged: measured only on a real disk (--disk)" };
      const rule = `statx's rule, and beyond it: iovec lengths ${current.lengthsByMemory ? "multiples of the DMA alignment" : "whole blocks"} (${current.sources.lengthsByMemory}); one range inside one page ${current.onePageAnyAddress ? "at any address" : "checked"} (${current.sources.onePageAnyAddress})`;
      const problem = kernelProblem(calls, io.alignment, io.op, current);
      return { kernel: name, kernels, rule, takes: problem === null, problem };
    }
    const set = kernelRuleSet(name);
    const problem = kernelProblem(calls, io.alignment, io.op, set.checks, set.memoryIsBlock);
    return { kernel: name, kernels: set.kernels, rule: set.rule, takes: problem === null, problem };
  });
}
