/**
 * The bpftrace program `trace capture` runs: every direct IO that the processes it follows
 * hand the kernel, with the iovecs as the caller gave them.
 *
 * The probes are syscall tracepoints and io_uring's tracepoints, read with the kernel's BTF
 * (kprobes and fentry are not available on every kernel this runs on; tracepoints are):
 *
 *   read write pread64 pwrite64 readv writev preadv pwritev preadv2 pwritev2
 *        enter: the descriptor's file (from the task's file table) must be O_DIRECT, a
 *               regular file or block device, and the target (inode and device, or device
 *               number) when one is named; then one E line and a V line per iovec
 *        exit:  an X line with the result, for the calls an E line was printed for
 *   io_uring_enter
 *        the ring named by descriptor, or by index among the calling thread's registered
 *        rings (IORING_ENTER_REGISTERED_RING, as VMMs and fio's t/io_uring register them); the
 *        SQEs the call will submit (between the ring's cached head and the tail the
 *        caller wrote, at most `to_submit`), read from the ring in the kernel: every read and
 *        write opcode on a direct file gives a U line and its V lines
 *   io_uring:io_uring_complete
 *        a C line for each submission a U line was printed for
 *   io_uring:io_uring_submit_req, io_submit
 *        counted, so that what was not read (SQPOLL, Linux AIO) is reported
 *        rather than missed silently
 *
 * Lines (fields separated by one space; numbers decimal, `nsecs` is CLOCK_MONOTONIC):
 *
 *   B <nsecs>                                        probes attached
 *   E <pid> <tid> <nsecs> <op r|w> <offset> <iovecs> <call>
 *   V <tid> <index> <address> <length>               after its E or U line, same CPU
 *   X <tid> <E's nsecs> <result> <nsecs>             may come before its E (other CPU)
 *   U <pid> <tid> <nsecs> <op r|w> <offset> <iovecs> <opcode> <ring> <user_data>
 *   C <ring> <user_data> <U's nsecs> <result> <nsecs>
 *   M <what> <pid> <count>                           something seen and not captured (IOs,
 *                                                    calls or SQEs; an IO recorded without all
 *                                                    its iovecs counts once)
 *   Z <name> <count>                                 totals at the end
 *
 * The following of processes starts from the pids given and takes in every process they
 * fork afterwards (`sched_process_fork`); threads share their process's pid.
 */

/** What the program filters on: a regular file, a block device, or every direct descriptor. */
export type CaptureTarget =
  | { kind: "file"; inode: number; devices: readonly number[] }
  | { kind: "block-device"; device: number }
  | { kind: "any" };

/** Iovecs read per call or SQE; more are counted in an M line and the IO marked. */
export const MAX_IOVECS = 1024;
/** Iovecs read per vectored io_uring SQE (the loop runs inside the SQE loop). */
export const MAX_RING_IOVECS = 32;
/** SQEs read per io_uring_enter. */
export const MAX_SQES = 128;

const O_DIRECT = 0o40000;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFBLK = 0o060000;
const IORING_ENTER_REGISTERED_RING = 1 << 4;
/** A task's registered ring slots (the kernel's IO_RINGFD_REG_MAX). */
const REGISTERED_RING_SLOTS = 16;
const IORING_SETUP_SQE128 = 1 << 10;
const IORING_SETUP_NO_SQARRAY = 1 << 16;
const IOSQE_FIXED_FILE = 1;

/** io_uring's read and write opcodes (uapi, stable): name, direction, vectored. */
export const RING_OPCODES: Readonly<Record<number, { name: string; op: "r" | "w"; vectored: boolean }>> = {
  1: { name: "READV", op: "r", vectored: true },
  2: { name: "WRITEV", op: "w", vectored: true },
  4: { name: "READ_FIXED", op: "r", vectored: false },
  5: { name: "WRITE_FIXED", op: "w", vectored: false },
  22: { name: "READ", op: "r", vectored: false },
  23: { name: "WRITE", op: "w", vectored: false },
  // 6.15+: vectored IO on registered buffers; the iovecs hold user addresses inside them.
  60: { name: "READV_FIXED", op: "r", vectored: true },
  61: { name: "WRITEV_FIXED", op: "w", vectored: true },
};

/** The kernel's dev_t (MKDEV) of a major and minor number. */
export function kernelDevice(major: number, minor: number): number {
  return major * 2 ** 20 + minor;
}

/** The syscalls captured, how each names its buffer and offset. */
const SYSCALLS: readonly { name: string; op: "r" | "w"; vectored: boolean; offset: "none" | "pos" | "pos_l" | "pos_l_or_current" }[] = [
  { name: "read", op: "r", vectored: false, offset: "none" },
  { name: "write", op: "w", vectored: false, offset: "none" },
  { name: "pread64", op: "r", vectored: false, offset: "pos" },
  { name: "pwrite64", op: "w", vectored: false, offset: "pos" },
  { name: "readv", op: "r", vectored: true, offset: "none" },
  { name: "writev", op: "w", vectored: true, offset: "none" },
  { name: "preadv", op: "r", vectored: true, offset: "pos_l" },
  { name: "pwritev", op: "w", vectored: true, offset: "pos_l" },
  { name: "preadv2", op: "r", vectored: true, offset: "pos_l_or_current" },
  { name: "pwritev2", op: "w", vectored: true, offset: "pos_l_or_current" },
];

export const CAPTURED_SYSCALLS: readonly string[] = SYSCALLS.map((call) => call.name);

/**
 * The ring the current task registered at `index` (IORING_REGISTER_RING_FDS) as `$var`, 0 when
 * there is none: what io_uring_enter with IORING_ENTER_REGISTERED_RING names by `fd`. The table
 * is the task's own (`io_uring_task.registered_rings`, IO_RINGFD_REG_MAX = 16 slots; the kernel
 * refuses a higher index); bpftrace indexes arrays by literals only, hence one branch per slot.
 */
function registeredRingOf(variable: string, index: string): string {
  const slots = Array.from({ length: REGISTERED_RING_SLOTS }, (_, slot) => `if (${index} == ${slot}) { ${variable} = curtask->io_uring->registered_rings[${slot}]; }`);
  return `${variable} = (struct file *)0;
  if (curtask->io_uring != 0) { ${slots.join(" else ")} }`;
}

/** The descriptor `fd` of the current task as `$var` (0 when out of range or closed). */
function fileOf(variable: string, fd: string): string {
  return `${variable} = (struct file *)0;
  if ((uint64)${fd} < (uint64)curtask->files->fdt->max_fds) { ${variable} = *(curtask->files->fdt->fd + ${fd}); }`;
}

function isTarget(file: string, target: CaptureTarget): string {
  const direct = `${file} != 0 && (${file}->f_flags & ${O_DIRECT}) != 0`;
  const mode = `(${file}->f_inode->i_mode & ${S_IFMT})`;
  switch (target.kind) {
    case "file":
      return `${direct} && ${mode} == ${S_IFREG} && ${file}->f_inode->i_ino == ${target.inode} && (${target.devices.map((device) => `${file}->f_inode->i_sb->s_dev == ${device}`).join(" || ")})`;
    case "block-device":
      return `${direct} && ${mode} == ${S_IFBLK} && ${file}->f_inode->i_rdev == ${target.device}`;
    case "any":
      return `${direct} && (${mode} == ${S_IFREG} || ${mode} == ${S_IFBLK})`;
  }
}

function iovecLoop(vector: string, count: string, max: number): string {
  return `$i = (uint64)0;
    while ($i < ${max}) {
      if ($i >= ${count}) { break; }
      $v = (struct iovec *)(${vector} + $i * 16);
      printf("V %d %lu %lu %lu\\n", tid, $i, (uint64)uptr($v)->iov_base, (uint64)uptr($v)->iov_len);
      $i = $i + 1;
    }
    if (${count} > ${max}) { printf("M iovecs-beyond-${max} %d 1\\n", pid); }`;
}

function syscallProbes(target: CaptureTarget): string {
  return SYSCALLS.map((call) => {
    const offset =
      call.offset === "none" ? "$f->f_pos" : call.offset === "pos" ? "args->pos" : call.offset === "pos_l" ? "args->pos_l" : "(args->pos_l == -1 ? $f->f_pos : args->pos_l)";
    const body = call.vectored
      ? `printf("E %d %d %lu ${call.op} %ld %lu ${call.name}\\n", pid, tid, $t, (int64)${offset}, (uint64)args->vlen);
    ${iovecLoop("(uint64)args->vec", "(uint64)args->vlen", MAX_IOVECS)}`
      : `printf("E %d %d %lu ${call.op} %ld 1 ${call.name}\\n", pid, tid, $t, (int64)${offset});
    printf("V %d 0 %lu %lu\\n", tid, (uint64)args->buf, (uint64)args->count);`;
    return `tracepoint:syscalls:sys_enter_${call.name} /@follow[pid]/ {
  ${fileOf("$f", "args->fd")}
  if (${isTarget("$f", target)}) {
    $t = nsecs;
    @start[tid] = $t;
    ${body}
  }
}
tracepoint:syscalls:sys_exit_${call.name} /@start[tid]/ {
  printf("X %d %lu %ld %lu\\n", tid, @start[tid], args->ret, nsecs);
  delete(@start[tid]);
}`;
  }).join("\n");
}

function ringProbes(target: CaptureTarget): string {
  const opcodes = Object.keys(RING_OPCODES).map(Number);
  const isRw = (op: string) => opcodes.map((code) => `${op} == ${code}`).join(" || ");
  const vectored = (op: string) =>
    Object.entries(RING_OPCODES)
      .filter(([, o]) => o.vectored)
      .map(([code]) => `${op} == ${code}`)
      .join(" || ");
  const writes = (op: string) =>
    Object.entries(RING_OPCODES)
      .filter(([, o]) => o.op === "w")
      .map(([code]) => `${op} == ${code}`)
      .join(" || ");
  return `tracepoint:syscalls:sys_enter_io_uring_enter /@follow[pid]/ {
  if ((args->flags & ${IORING_ENTER_REGISTERED_RING}) != 0) {
    ${registeredRingOf("$r", "args->fd")}
  } else {
    ${fileOf("$r", "args->fd")}
  }
  // A descriptor or index naming no ring: the kernel refuses the call, so there is nothing to miss.
  if ($r != 0) {
    if (str($r->f_path.dentry->d_name.name) == "[io_uring]") {
      $ctx = (struct io_ring_ctx *)$r->private_data;
      $head = (uint64)$ctx->cached_sq_head;
      $n = (uint64)(uint32)($ctx->rings->sq.tail - $ctx->cached_sq_head);
      if ($n > (uint64)args->to_submit) { $n = (uint64)args->to_submit; }
      $mask = (uint64)($ctx->sq_entries - 1);
      $shift = ($ctx->flags & ${IORING_SETUP_SQE128}) != 0 ? (uint64)7 : (uint64)6;
      $s = (uint64)0;
      while ($s < ${MAX_SQES}) {
        if ($s >= $n) { break; }
        $idx = ($head + $s) & $mask;
        if (($ctx->flags & ${IORING_SETUP_NO_SQARRAY}) == 0) { $idx = (uint64)*($ctx->sq_array + $idx); }
        $sqe = (struct io_uring_sqe *)((uint64)$ctx->sq_sqes + ((uint64)$idx << $shift));
        $op = $sqe->opcode;
        if (${isRw("$op")}) {
          @decoded = count();
          if (($sqe->flags & ${IOSQE_FIXED_FILE}) != 0) {
            printf("M fixed-file-sqe %d 1\\n", pid);
          } else {
            ${fileOf("$f", "$sqe->fd")}
            if (${isTarget("$f", target)}) {
              $t = nsecs;
              $w = (${writes("$op")}) ? "w" : "r";
              @ring[(uint64)$ctx, $sqe->user_data] = $t;
              if (${vectored("$op")}) {
                printf("U %d %d %lu %s %ld %u %u %lu %lu\\n", pid, tid, $t, $w, (int64)$sqe->off, $sqe->len, $op, (uint64)$ctx, $sqe->user_data);
                ${iovecLoop("(uint64)$sqe->addr", "(uint64)$sqe->len", MAX_RING_IOVECS)}
              } else {
                printf("U %d %d %lu %s %ld 1 %u %lu %lu\\n", pid, tid, $t, $w, (int64)$sqe->off, $op, (uint64)$ctx, $sqe->user_data);
                printf("V %d 0 %lu %u\\n", tid, $sqe->addr, $sqe->len);
              }
            }
          }
        }
        $s = $s + 1;
      }
      if ($n > ${MAX_SQES}) { printf("M sqes-beyond-${MAX_SQES} %d %lu\\n", pid, $n - ${MAX_SQES}); }
    }
  }
}
tracepoint:io_uring:io_uring_complete /@ring[(uint64)args->ctx, args->user_data]/ {
  printf("C %lu %lu %lu %d %lu\\n", (uint64)args->ctx, args->user_data, @ring[(uint64)args->ctx, args->user_data], args->res, nsecs);
  delete(@ring[(uint64)args->ctx, args->user_data]);
}
tracepoint:io_uring:io_uring_submit_req /@follow[pid]/ {
  if (${isRw("args->opcode")}) { @submitted = count(); }
}
tracepoint:syscalls:sys_enter_io_submit /@follow[pid]/ {
  printf("M linux-aio-io_submit %d 1\\n", pid);
}`;
}

/** The program following `pids` (and what they fork) for direct IO on `target`. */
export function captureProgram(pids: readonly number[], target: CaptureTarget): string {
  for (const pid of pids) if (!Number.isSafeInteger(pid) || pid <= 0) throw new Error(`not a pid: ${pid}`);
  return `BEGIN {
  ${pids.map((pid) => `@follow[${pid}] = 1;`).join(" ")}
  printf("B %lu\\n", nsecs);
}
tracepoint:sched:sched_process_fork /@follow[pid]/ {
  @follow[args->child_pid] = 1;
}
${syscallProbes(target)}
${ringProbes(target)}
END {
  print(@decoded);
  print(@submitted);
  clear(@follow);
  clear(@start);
  clear(@ring);
  clear(@decoded);
  clear(@submitted);
}
`;
}
