/**
 * `trace capture` on programs nobody here wrote: dd, fio (psync and io_uring), qemu-io and
 * qemu-img convert, QEMU's block layer with the host cache off. Each trace is checked against
 * strace of the same run (the same calls on the disk, with the same offsets and iovec lengths)
 * or, for io_uring, against fio's own log of the IOs; and replays of small traces are checked
 * against a hand calculation. Root, bpftrace and each program are needed; a test skips,
 * saying which is missing, without them.
 */
import { describe, expect, test } from "bun:test";
import Ajv2020 from "ajv/dist/2020";
import { existsSync, readdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { captureUnavailable } from "../src/trace/capture";
import { findProgram } from "../src/host/scratch-dir";
import { scratchDiskUnavailable } from "../src/host/scratch-disks";
import { randomBytes, ROOT, runCliIn, scratchDir } from "./helpers";

const why = captureUnavailable();
const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false });
const schema = (name: string) => ajv.compile(JSON.parse(readFileSync(join(ROOT, "schema", `${name}.schema.json`), "utf8")));
const traceLine = schema("trace");
const captureDocument = schema("trace-capture");

/** Every line of the trace at `path` is valid by schema/trace.schema.json. */
function expectValidTrace(path: string): void {
  for (const line of readFileSync(path, "utf8").trim().split("\n")) {
    const ok = traceLine(JSON.parse(line));
    expect({ line, errors: ok ? null : traceLine.errors }).toEqual({ line, errors: null });
  }
}
const dir = scratchDir("trace-capture");
const disk = join(dir, "disk.img");
writeFileSync(disk, randomBytes(4 * 2 ** 20, 3));
const diskPath = realpathSync(disk);

function needs(...programs: string[]): string | null {
  if (why !== null) return why;
  const missing = programs.filter((program) => findProgram(program) === null);
  return missing.length === 0 ? null : `needs ${missing.join(", ")}`;
}

function title(name: string, reason: string | null): string {
  return reason === null ? name : `${name} (skipped: ${reason})`;
}

interface Io {
  op: "read" | "write";
  offset: number;
  lens: number[];
  result: number | null;
  error?: string;
  call?: string;
  iovecs: [number, number][];
}

/** Runs `trace capture` (of every direct descriptor, or of `target`) around `command`; the trace's IOs and its end line. */
function capture(name: string, command: string[], target: string | null = disk): { ios: Io[]; end: { missed: Record<string, number>; ios: number }; header: Record<string, unknown>; stdout: string } {
  const output = join(dir, `${name}.trace`);
  const result = Bun.spawnSync(
    [process.execPath, join(ROOT, "cli/bounce-bench.ts"), "trace", "capture", ...(target === null ? [] : ["--disk", target]), "--output", output, "--force", "--", ...command],
    { cwd: dir, timeout: 300_000 },
  );
  const stderr = result.stderr.toString();
  if (result.exitCode !== 0) throw new Error(`trace capture exited ${result.exitCode}: ${stderr}`);
  const lines = readFileSync(output, "utf8").trim().split("\n").map((line) => JSON.parse(line));
  const ios = lines
    .filter((line) => line.type === "io")
    .map((line) => ({ op: line.op, offset: line.offset, lens: line.iovecs.map((v: number[]) => v[1]), result: line.result, error: line.error, call: line.call, iovecs: line.iovecs }));
  return { ios, end: lines.at(-1), header: lines[0], stdout: result.stdout.toString() };
}

/**
 * The direct-IO calls strace saw on `path` (strace -f -y -s1 -e abbrev=none): op, offset and iovec lengths. A
 * call strace split across threads (`<unfinished ...>`, `<... resumed>`) is joined first;
 * read and write take their offset from the file position (lseek and earlier calls).
 */
function straceCalls(log: string, path: string): Io[] {
  const joined: string[] = [];
  const unfinished = new Map<string, string>();
  for (const raw of readFileSync(log, "utf8").split("\n")) {
    const pid = /^(\d+)\s+/.exec(raw)?.[1] ?? "";
    const line = raw.replace(/^\d+\s+/, "");
    if (line.endsWith("<unfinished ...>")) {
      unfinished.set(pid, line.slice(0, -"<unfinished ...>".length));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(line);
    if (resumed !== null) {
      joined.push((unfinished.get(pid) ?? "") + resumed[1]);
      unfinished.delete(pid);
      continue;
    }
    joined.push(line);
  }
  const positions = new Map<string, number>();
  const calls: Io[] = [];
  for (const line of joined) {
    const match = /^(\w+)\((\d+)<([^>]*)>, (.*)\)\s+= (-?\d+)(?: (E\w+))?/.exec(line);
    if (match === null) continue;
    const [, call, fd, file, args, ret, errno] = match;
    if (file !== path) continue;
    const result = Number(ret);
    if (call === "lseek") {
      positions.set(fd!, result);
      continue;
    }
    if (!/^(read|write|pread64|pwrite64|readv|writev|preadv|pwritev|preadv2|pwritev2)$/.test(call!)) continue;
    const op = call!.includes("read") ? "read" : "write";
    // From the end, where no string is: read(fd, buf, count); pread64(fd, buf, count, offset);
    // preadv(fd, iov, n, offset); preadv2(fd, iov, n, offset, flags); readv(fd, iov, n).
    const tail = args!.split(", ");
    const positional = call === "read" || call === "write" || call === "readv" || call === "writev";
    const lens = call!.includes("v") ? [...args!.matchAll(/iov_len=(\d+)/g)].map((m) => Number(m[1])) : [Number(positional ? tail.at(-1) : tail.at(-2))];
    let offset: number;
    if (positional) {
      offset = positions.get(fd!) ?? 0;
      if (result > 0) positions.set(fd!, offset + result);
    } else offset = Number(call!.endsWith("2") ? tail.at(-2) : tail.at(-1));
    calls.push({ op, offset, lens, result: result >= 0 ? result : null, ...(errno === undefined ? {} : { error: errno }), iovecs: [] });
  }
  return calls;
}

const STRACED = "read,write,pread64,pwrite64,readv,writev,preadv,pwritev,preadv2,pwritev2,lseek";
const key = (io: Io) => `${io.op} ${io.offset} [${io.lens.join(",")}] ${io.result ?? io.error}`;

/** Captures `command` under strace and checks both saw the same calls on the disk. */
function checkedAgainstStrace(name: string, command: string[]): Io[] {
  const log = join(dir, `${name}.strace`);
  const captured = capture(name, ["strace", "-f", "-qq", "-y", "-s1", "-e", "abbrev=none", "-o", log, "-e", `trace=${STRACED}`, ...command]);
  const traced = straceCalls(log, diskPath);
  expect(captured.end.missed).toEqual({});
  expect(traced.length).toBeGreaterThan(0);
  expect(captured.ios.map(key).sort()).toEqual(traced.map(key).sort());
  return captured.ios;
}

/**
 * Replays a trace captured on this temporary directory's disk file (memory and blocks of 512)
 * under every rule set and kernel, and checks it by hand: there every rule set agrees with the
 * plain rule, an IO goes direct when its offset, length and every iovec's address and length
 * are multiples of 512, else its bytes are copied; and no kernel takes those as they are. Returns
 * how many IOs were copied.
 */
function replayedBy512(name: string, ios: Io[]): number {
  const doc = replayJson(join(dir, `${name}.trace`), "--rules", "all", "--kernel", "all");
  expect(doc.disk.alignment).toMatchObject({ memAlign: 512, offsetAlign: 512 });
  const aligned = (io: Io) => io.offset % 512 === 0 && io.iovecs.every(([address, len]) => address % 512 === 0 && len % 512 === 0);
  const copied = ios.filter((io) => !aligned(io));
  expect(doc.summary.ios).toBe(ios.length);
  for (const rules of doc.summary.rules) {
    expect({ rules: rules.rules, direct: rules.decisions.direct, copied: rules.copiedBytes }).toEqual({
      rules: rules.rules,
      direct: ios.length - copied.length,
      copied: copied.reduce((sum, io) => sum + io.lens.reduce((a, b) => a + b, 0), 0),
    });
    for (const kernel of rules.kernels) expect([kernel.kernel, kernel.needlessIos, kernel.refusedIos]).toEqual([kernel.kernel, 0, 0]);
  }
  return copied.length;
}

function replayJson(trace: string, ...args: string[]) {
  const result = runCliIn(dir, "replay", trace, ...args, "--json");
  if (result.code !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout);
}

describe("capture against strace", () => {
  const dd = needs("strace", "dd");
  test.skipIf(dd !== null)(title("dd iflag=direct and oflag=direct: every read and write, offsets from the file position", dd), () => {
    // To the end of the disk: 64 reads of 64 KiB, then one that returns 0 at the end.
    const ios = checkedAgainstStrace("dd-read", ["dd", `if=${disk}`, "of=/dev/null", "bs=64k", "iflag=direct", "status=none"]);
    expect(ios.map((io) => [io.op, io.offset, io.lens[0], io.result, io.call])).toEqual([
      ...Array.from({ length: 64 }, (_, i) => ["read", i * 65536, 65536, 65536, "read"]),
      ["read", 4 * 2 ** 20, 65536, 0, "read"],
    ]);
    expect(replayedBy512("dd-read", ios)).toBe(0); // dd's buffers are page-aligned
    const writes = checkedAgainstStrace("dd-write", ["dd", "if=/dev/zero", `of=${disk}`, "bs=4k", "count=3", "seek=5", "oflag=direct", "conv=notrunc", "status=none"]);
    expect(writes.map((io) => [io.op, io.offset, io.lens[0]])).toEqual([0, 1, 2].map((i) => ["write", (5 + i) * 4096, 4096]));
  });

  const qemuIo = needs("strace", "qemu-io");
  test.skipIf(qemuIo !== null)(title("qemu-io with the host cache off (-n): its alignment probes, preadv and pwritev from its worker threads", qemuIo), () => {
    const ios = checkedAgainstStrace("qemu-io", ["qemu-io", "-n", "-f", "raw", "-c", "readv 0 4k 4k", "-c", "writev -P 0xab 64k 4k 8k", "-c", "read 128k 512", disk]);
    expectValidTrace(join(dir, "qemu-io.trace"));
    // The guest-visible requests, as QEMU handed them over: two iovecs of 4 KiB, and three.
    expect(ios.some((io) => io.op === "read" && io.offset === 0 && io.lens.join() === "4096,4096")).toBe(true);
    expect(ios.some((io) => io.op === "write" && io.offset === 65536 && io.lens.reduce((a, b) => a + b) === 12288)).toBe(true);
    expect(readFileSync(disk).subarray(65536, 65536 + 12288).every((b) => b === 0xab)).toBe(true);
    expect(replayedBy512("qemu-io", ios)).toBeGreaterThan(0); // QEMU's alignment probes (a byte; 4 KiB a byte into a page)
  });

  const qemuImg = needs("strace", "qemu-img");
  test.skipIf(qemuImg !== null)(title("qemu-img convert -t none -T none: QEMU's block layer copying into the disk", qemuImg), () => {
    const source = join(dir, "source.img");
    writeFileSync(source, randomBytes(2 ** 20, 11));
    const ios = checkedAgainstStrace("qemu-img", ["qemu-img", "convert", "-n", "-t", "none", "-T", "none", "-f", "raw", "-O", "raw", source, disk]);
    expect(ios.filter((io) => io.op === "write").reduce((sum, io) => sum + (io.result ?? 0), 0)).toBe(2 ** 20);
    expect(Buffer.compare(readFileSync(disk).subarray(0, 2 ** 20), readFileSync(source))).toBe(0);
    replayedBy512("qemu-img", ios);
  });

  const fio = needs("strace", "fio");
  test.skipIf(fio !== null)(title("fio direct=1 with psync: random writes and reads", fio), () => {
    const ios = checkedAgainstStrace("fio-psync", ["fio", "--name=t", `--filename=${disk}`, "--direct=1", "--rw=randrw", "--bs=4k", "--size=256k", "--ioengine=psync", "--randseed=7", "--output=/dev/null"]);
    expect(ios.length).toBe(64);
    expect(replayedBy512("fio-psync", ios)).toBe(0);
  });
});

describe("capture of io_uring against fio's own log", () => {
  const fio = needs("fio");
  test.skipIf(fio !== null)(title("fio direct=1 with io_uring at queue depth 8: every SQE's op, offset and length, as fio logged them", fio), () => {
    const log = join(dir, "fio-uring.iolog");
    const captured = capture("fio-uring", ["fio", "--name=t", `--filename=${disk}`, "--direct=1", "--rw=randread", "--bs=4k", "--size=512k", "--ioengine=io_uring", "--iodepth=8", `--write_iolog=${log}`, "--randseed=9", "--output=/dev/null"]);
    expect(captured.end.missed).toEqual({});
    expectValidTrace(join(dir, "fio-uring.trace"));
    const logged = readFileSync(log, "utf8")
      .split("\n")
      .map((line) => line.trim().split(/\s+/)) // v3: TIME FILE ACTION OFFSET LENGTH
      .filter((f) => f[2] === "read")
      .map((f) => `read ${f[3]} [${f[4]}]`);
    expect(logged.length).toBe(128);
    expect(captured.ios.map((io) => `${io.op} ${io.offset} [${io.lens.join(",")}]`).sort()).toEqual(logged.sort());
    expect(captured.ios.every((io) => io.call === "io_uring READ" || io.call === "io_uring READV")).toBe(true);
    expect(captured.ios.every((io) => io.result === 4096)).toBe(true);
    // The converter reads the same log into the same IOs.
    const converted = join(dir, "fio-uring-converted.trace");
    expect(runCliIn(dir, "trace", "convert", log, "--from", "fio-iolog", "--output", converted, "--force").code).toBe(0);
    expect(replayJson(converted, "--rules", "kernel", "--kernel", "6.0").summary.ios).toBe(128);
  });
});

describe("capture of io_uring on registered rings", () => {
  test.skipIf(why !== null)(title("two rings of one thread entered by their registered index (0 and 1): each ring's read, none missed", why), () => {
    const captured = capture("registered-rings", [process.execPath, join(ROOT, "test/fixtures/registered-rings.ts"), disk]);
    expect(captured.stdout.split("\n").filter((line) => line.startsWith("ring "))).toEqual(["ring 0: registered true, read 4096", "ring 1: registered true, read 4096"]);
    expect(captured.end.missed).toEqual({});
    expect(captured.ios.map((io) => [io.call, io.op, io.offset, io.lens, io.result])).toEqual([
      ["io_uring READ", "read", 3 * 4096, [4096], 4096],
      ["io_uring READ", "read", 5 * 4096, [4096], 4096],
    ]);
  });
});

describe("replays of captured traces, by hand", () => {
  const fio = needs("fio");
  const loop = fio ?? scratchDiskUnavailable("loop");
  const job = (align: number) => ["fio", "--name=t", `--filename=${disk}`, "--direct=1", "--rw=read", "--bs=4k", "--size=32k", "--ioengine=psync", `--mem_align=${align}`, "--output=/dev/null"];
  const kernelsOf = (rules: { kernels: { kernel: string; needlessIos: number; needlessBytes: number; refusedIos: number }[] }) =>
    Object.fromEntries(rules.kernels.map((k) => [k.kernel, [k.needlessIos, k.needlessBytes, k.refusedIos]]));

  test.skipIf(fio !== null)(title("fio's page-aligned buffers, then one a byte into its page (which this kernel refused): every rule set and kernel", fio), () => {
    capture("fio-aligned", job(0));
    // The disk file on this temporary directory: memory and blocks of 512, as its header says.
    const aligned = replayJson(join(dir, "fio-aligned.trace"), "--rules", "all", "--kernel", "all");
    expect(aligned.disk.alignment).toMatchObject({ memAlign: 512, offsetAlign: 512 });
    expect(aligned.summary).toMatchObject({ ios: 8, reads: 8, bytes: 32768, shapes: 1, capturedErrors: {} });
    // Page-aligned 4 KiB reads: every rule set sends them as they are, every kernel takes them.
    for (const rules of aligned.summary.rules) {
      expect([rules.rules, rules.decisions.direct, rules.copiedBytes]).toEqual([rules.rules, 8, 0]);
      for (const counts of Object.values(kernelsOf(rules))) expect(counts).toEqual([0, 0, 0]);
    }
    // fio stops at the first error: one read, refused with EINVAL when captured. No kernel takes
    // an odd address, so every rule set copies it, and none of that copy is needless.
    capture("fio-offset-1", job(1));
    const odd = replayJson(join(dir, "fio-offset-1.trace"), "--rules", "all", "--kernel", "all");
    expect(odd.summary).toMatchObject({ ios: 1, capturedErrors: { EINVAL: 1 } });
    for (const rules of odd.summary.rules) {
      expect([rules.rules, rules.decisions.bounce, rules.copiedBytes]).toEqual([rules.rules, 1, 4096]);
      expect(rules.topShapes).toEqual([{ shape: "read 4096 B, 1 iovec [1+4096], disk offset on a block", ios: 1, copiedBytes: 4096 }]);
      for (const counts of Object.values(kernelsOf(rules))) expect(counts).toEqual([0, 0, 0]);
    }
    // Done for real, on a scratch file: bounced, and its bytes checked.
    const done = replayJson(join(dir, "fio-offset-1.trace"), "--rules", "kernel", "--execute");
    expect(done.execute).toMatchObject({ ios: 1, verified: 1, copiedBytes: 4096, decisions: { bounce: 1 } });
  });

  test.skipIf(loop !== null)(title("fio's buffers 512 bytes into their pages, on a real 4 KiB-sector disk (memory alignment 512)", loop), () => {
    capture("fio-offset-512", job(512));
    const doc = replayJson(join(dir, "fio-offset-512.trace"), "--rules", "all", "--kernel", "all", "--disk-kind", "loop", "--sector", "4096");
    expect(doc.disk.alignment).toMatchObject({ memAlign: 512, offsetAlign: 4096 });
    const by = Object.fromEntries(doc.summary.rules.map((r: { rules: string }) => [r.rules, r]));
    // Addresses at 512 meet the memory alignment, lengths of 4096 the block: the kernel's rule
    // and QEMU's (memory 512, requests 4096) send all 8 as they are.
    for (const rules of ["kernel", "qemu"]) expect([rules, by[rules].decisions.direct, by[rules].copiedBytes]).toEqual([rules, 8, 0]);
    // The reference (block-aligned segments), cloud-hypervisor (max of memory and offset
    // alignment: 4096) and OpenVMM (the sector, 4096, for a block device) copy all 8.
    for (const rules of ["seed", "cloud-hypervisor", "openvmm"]) expect([rules, by[rules].decisions.bounce, by[rules].copiedBytes]).toEqual([rules, 8, 32768]);
    // Since 6.0 the kernel takes them: those copies are needless; 5.19 held memory to the block,
    // so it needed them, and refuses what the kernel rule and QEMU send.
    for (const rules of ["seed", "cloud-hypervisor", "openvmm"]) {
      expect(kernelsOf(by[rules])).toEqual({ "5.19": [0, 0, 0], "6.0": [8, 32768, 0], "6.18.0": [8, 32768, 0], "6.18-stable": [8, 32768, 0], current: [8, 32768, 0] });
    }
    for (const rules of ["kernel", "qemu"]) {
      expect(kernelsOf(by[rules])).toEqual({ "5.19": [0, 0, 8], "6.0": [0, 0, 0], "6.18.0": [0, 0, 0], "6.18-stable": [0, 0, 0], current: [0, 0, 0] });
    }
  });
});

describe("following a process", () => {
  const dd = needs("dd", "sh");
  test.skipIf(dd !== null)(title("--pid follows a running shell and the dd it forks later, and stops when it exits", dd), () => {
    const shell = Bun.spawn(["sh", "-c", `sleep 8; dd if=${disk} of=/dev/null bs=4k count=4 iflag=direct status=none`]);
    try {
      const output = join(dir, "pid.trace");
      const result = Bun.spawnSync([process.execPath, join(ROOT, "cli/bounce-bench.ts"), "trace", "capture", "--pid", String(shell.pid), "--disk", disk, "--output", output, "--json"], { cwd: dir, timeout: 300_000 });
      expect(result.exitCode).toBe(0);
      const summary = JSON.parse(result.stdout.toString());
      expect(captureDocument(summary) ? null : captureDocument.errors).toBeNull();
      expect(summary).toMatchObject({ command: "trace capture", ios: 4, missed: {}, commandExit: null });
      const ios = readFileSync(output, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((l) => l.type === "io");
      expect(ios.map((io) => io.offset)).toEqual([0, 4096, 8192, 12288]);
    } finally {
      shell.kill();
    }
  });
});

describe("what capture leaves", () => {
  test.skipIf(why !== null)(title("no tracefs mount outside bpftrace's namespace, no scratch directory, a trace with its header and end", why), () => {
    const mounts = readFileSync("/proc/self/mounts", "utf8");
    const before = readdirSync(tmpdir()).filter((name) => name.startsWith("bounce-bench-trace-")).length;
    const captured = capture("leaves", ["true"], null);
    expect(captured.ios).toEqual([]);
    expect(captured.header).toMatchObject({ type: "header", format: "bounce-bench-trace", version: 1, disk: null, synthetic: null });
    expect(readFileSync("/proc/self/mounts", "utf8")).toBe(mounts);
    expect(readdirSync(tmpdir()).filter((name) => name.startsWith("bounce-bench-trace-")).length).toBe(before);
  });

  test.skipIf(why === null)(title("without root (or bpftrace), capture says what it needs, exit 1, and writes no trace", why === null ? "runs only where capture cannot" : null), () => {
    const output = join(dir, "refused.trace");
    const result = runCliIn(dir, "trace", "capture", "--output", output, "--", "true");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(why!);
    expect(existsSync(output)).toBe(false);
  });
});

test("bad capture input is one line, exit 2, before anything runs", () => {
  const output = join(dir, "bad.trace");
  for (const [args, message] of [
    [["--output", output], /give one of --pid PID and -- COMMAND/],
    [["--pid", "0", "--output", output], /--pid: "0" is not a whole number of at least 1/],
    [["--pid", "999999999", "--output", output], /--pid 999999999: no such process/],
    [["--disk", join(dir, "missing"), "--output", output, "--", "true"], /--disk .*: no such file/],
    [["--disk", dir, "--output", output, "--", "true"], /is a directory, not a regular file or block device/],
    [["--pid", "1", "--output", output, "--", "true"], /give --pid or a command after --, not both/],
  ] as [string[], RegExp][]) {
    const result = runCliIn(dir, "trace", "capture", ...args);
    expect({ args, code: result.code }).toEqual({ args, code: 2 });
    expect(result.stderr).toMatch(message);
    expect(existsSync(output)).toBe(false);
  }
});
