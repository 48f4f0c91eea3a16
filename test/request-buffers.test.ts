/**
 * RequestBuffers and OwnedRequestBuffers: alignment, readers and writers, read-only requests,
 * lock and its iovecs. The iovecs are proved by handing them to the kernel (pwritev/preadv on
 * a scratch file), which touches every byte of every iovec.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import {
  GuestAccessError,
  GuestMemory,
  InvalidAlignmentError,
  IovecArray,
  OutOfRangeError,
  OwnedRequestBuffers,
  PagedRange,
  ReadOnlyError,
  RequestBuffers,
} from "../src";
import { closeFd, O_RDWR, openFile, preadv, pwritevOnce } from "../src/native";
import { arbitraryRange, GUEST_PAGES } from "./arbitraries";
import { fileBytes, modelAddresses, modelRuns, PAGE, randomBytes, scratchDir, thrown } from "./helpers";

const dir = scratchDir("request");
const imagePath = join(dir, "guest.img");
const diskPath = join(dir, "disk.bin");
let memory: GuestMemory;
let diskFd: number;

/** What the guest image holds: kept in step with every write the tests make. */
let mirror: Uint8Array<ArrayBuffer>;

function resetGuest(seed: number): void {
  mirror = randomBytes(GUEST_PAGES * PAGE, seed);
  memory.write(0, mirror);
}

beforeAll(() => {
  memory = GuestMemory.create(imagePath, GUEST_PAGES * PAGE);
  writeFileSync(diskPath, new Uint8Array(GUEST_PAGES * PAGE));
  diskFd = openFile(diskPath, O_RDWR);
});
afterAll(() => {
  closeFd(diskFd);
  memory.release();
});

const request = (offset: number, len: number, gpns: number[], isWrite = true) =>
  new RequestBuffers(memory, new PagedRange(offset, len, gpns), isWrite);

describe("isAligned: (offset | len | 4096) & (a - 1) == 0", () => {
  test("examples", () => {
    expect(request(0, PAGE, [1]).isAligned(512)).toBe(true);
    expect(request(512, 1024, [1]).isAligned(512)).toBe(true);
    expect(request(512, 1024, [1]).isAligned(1024)).toBe(false);
    expect(request(0, 3 * PAGE, [1, 2, 3]).isAligned(PAGE)).toBe(true);
    expect(request(0, 100, [1]).isAligned(1)).toBe(true);
    expect(request(0, 0, []).isAligned(PAGE)).toBe(true);
  });

  test("an alignment above the page size is never met, and the reason says why", () => {
    const buffers = request(0, 4 * PAGE, [2, 3, 4, 5]);
    expect(buffers.isAligned(2 * PAGE)).toBe(false);
    expect(buffers.alignmentReasons(2 * PAGE)).toEqual([
      "alignment 8192 exceeds the page size 4096: interior page boundaries are not contiguous in host memory",
    ]);
  });

  test("every violated condition is named", () => {
    expect(request(100, 1000, [1]).alignmentReasons(512)).toEqual([
      "memory offset 100 is not a multiple of 512",
      "buffer length 1000 is not a multiple of 512",
    ]);
    expect(request(0, PAGE, [1]).alignmentReasons(512)).toEqual([]);
  });

  test("a non-power-of-two alignment is a clear error", () => {
    for (const bad of [0, 3, 6, -4, 1.5, Number.NaN, 2 ** 53 + 2]) {
      const error = thrown(() => request(0, PAGE, [1]).isAligned(bad));
      expect(error).toBeInstanceOf(InvalidAlignmentError);
      expect(error.message).toBe(`alignment ${bad} is not a power of two`);
    }
  });

  test("property: aligned iff a <= 4096, the start and every iovec base and length are multiples of a", () => {
    fc.assert(
      fc.property(arbitraryRange, fc.integer({ min: 0, max: 14 }), ([offset, len, gpns], shift) => {
        const a = 2 ** shift;
        const runs = modelRuns(modelAddresses(offset, len, gpns));
        // The start counts even for an empty range (the rule folds in the offset).
        const startAligned = (offset % PAGE) % a === 0;
        const model = a <= PAGE && startAligned && runs.every((run) => run.base % a === 0 && run.len % a === 0);
        const buffers = request(offset, len, gpns);
        expect(buffers.isAligned(a)).toBe(model);
        expect(buffers.alignmentReasons(a).length === 0).toBe(model);
      }),
      { numRuns: 300 },
    );
  });
});

describe("readers and writers", () => {
  test("a read-only request (a disk write) has a writer of length 0", () => {
    resetGuest(1);
    const buffers = request(0, 2 * PAGE, [3, 4], false);
    const writer = buffers.writer();
    expect(writer.len).toBe(0);
    expect(thrown(() => writer.write(new Uint8Array(1)))).toBeInstanceOf(ReadOnlyError);
    expect(thrown(() => writer.fill(0, 10))).toBeInstanceOf(ReadOnlyError);
    writer.write(new Uint8Array(0));
    writer.fill(7, 0);
    expect(buffers.reader().readBytes()).toEqual(mirror.subarray(3 * PAGE, 5 * PAGE)); // reading is allowed
    expect(fileBytes(imagePath)).toEqual(mirror);
  });

  test("going past the end is out of range (remaining, requested) with no partial effect", () => {
    resetGuest(2);
    const writer = request(100, 300, [5]).writer();
    writer.skip(100);
    const error = thrown(() => writer.write(new Uint8Array(201)));
    expect(error).toBeInstanceOf(OutOfRangeError);
    expect((error as OutOfRangeError).remaining).toBe(200);
    expect((error as OutOfRangeError).requested).toBe(201);
    expect(error.message).toBe("write: out of range: 201 bytes requested, 200 remaining");
    expect(fileBytes(imagePath)).toEqual(mirror);
    expect(writer.len).toBe(200);
    const reader = request(0, 10, [5]).reader();
    expect(thrown(() => reader.read(new Uint8Array(11)))).toBeInstanceOf(OutOfRangeError);
    expect(thrown(() => reader.skip(11))).toBeInstanceOf(OutOfRangeError);
    expect(reader.len).toBe(10);
  });

  test("a GPN outside guest memory fails before any byte moves", () => {
    resetGuest(3);
    const buffers = request(0, 3 * PAGE, [1, GUEST_PAGES + 5, 2]);
    const error = thrown(() => buffers.writer().fill(0xab, 3 * PAGE));
    expect(error).toBeInstanceOf(GuestAccessError);
    expect(error.message).toContain(`GPN ${GUEST_PAGES + 5} is past the end`);
    expect(fileBytes(imagePath)).toEqual(mirror);
    const partial = new Uint8Array(3 * PAGE);
    expect(thrown(() => buffers.reader().read(partial))).toBeInstanceOf(GuestAccessError);
    expect(partial.every((b) => b === 0)).toBe(true);
  });

  test("property: readers and writers move exactly the model's bytes", () => {
    fc.assert(
      fc.property(arbitraryRange, fc.integer(), fc.nat(), ([offset, len, gpns], seed, cut) => {
        resetGuest(seed);
        const addresses = modelAddresses(offset, len, gpns);
        const buffers = request(offset, len, gpns);
        // Read in two pieces, at a random cut.
        const first = len === 0 ? 0 : cut % (len + 1);
        const reader = buffers.reader();
        const head = reader.readBytes(first);
        const tail = reader.readBytes();
        expect(reader.len).toBe(0);
        const expected = Uint8Array.from(addresses, (address) => mirror[address]!);
        expect(head).toEqual(expected.subarray(0, first));
        expect(tail).toEqual(expected.subarray(first));
        // Write new bytes; repeated GPNs mean later bytes win, as in the model.
        const data = randomBytes(len, seed ^ 0x55);
        const writer = buffers.writer();
        writer.write(data.subarray(0, first));
        writer.write(data.subarray(first));
        addresses.forEach((address, i) => (mirror[address] = data[i]!));
        expect(fileBytes(imagePath)).toEqual(mirror);
      }),
      { numRuns: 150 },
    );
  });
});

describe("lock", () => {
  test("locking a read-only request for write is refused; for read it works", () => {
    const buffers = request(0, PAGE, [1], false);
    expect(thrown(() => buffers.lock(true))).toBeInstanceOf(ReadOnlyError);
    using iovecs = buffers.lock(false);
    expect(iovecs.count).toBe(1);
  });

  test("a bad GPN is caught by lock, so it never reaches the kernel", () => {
    const buffers = request(0, 2 * PAGE, [0, GUEST_PAGES]);
    expect(thrown(() => buffers.lock(true))).toBeInstanceOf(GuestAccessError);
    using iovecs = new IovecArray(4);
    iovecs.push(memory.hostAddress(0), PAGE);
    expect(thrown(() => buffers.lockInto(true, iovecs, true))).toBeInstanceOf(GuestAccessError);
    expect(iovecs.count).toBe(1); // left as it was
  });

  test("iovecs are struct iovec laid out for preadv, one per run of consecutive GPNs", () => {
    using iovecs = request(512, 4 * PAGE - 1024, [7, 8, 9, 3]).lock(true);
    expect(iovecs.count).toBe(2);
    expect(memory.guestAddressOf(iovecs.base(0))).toBe(7 * PAGE + 512);
    expect(iovecs.length(0)).toBe(3 * PAGE - 512);
    expect(memory.guestAddressOf(iovecs.base(1))).toBe(3 * PAGE);
    expect(iovecs.length(1)).toBe(PAGE - 512);
    expect(iovecs.totalBytes()).toBe(4 * PAGE - 1024);
  });

  test("property: the kernel reads and writes exactly the model's bytes through the iovecs", () => {
    using iovecs = new IovecArray(1);
    fc.assert(
      fc.property(arbitraryRange, fc.integer(), ([offset, len, gpns], seed) => {
        resetGuest(seed);
        const addresses = modelAddresses(offset, len, gpns);
        const buffers = request(offset, len, gpns);
        buffers.lockInto(true, iovecs);
        const runs = modelRuns(addresses);
        expect(iovecs.count).toBe(runs.length);
        runs.forEach((run, i) => {
          expect(memory.guestAddressOf(iovecs.base(i))).toBe(run.base);
          expect(iovecs.length(i)).toBe(run.len);
        });
        if (len === 0) return;
        // Guest -> file: the file holds the model's bytes, in order.
        expect(pwritevOnce(diskFd, iovecs.address(), iovecs.count, 0)).toBe(len);
        const written = new Uint8Array(readFileSync(diskPath).subarray(0, len));
        expect(written).toEqual(Uint8Array.from(addresses, (address) => mirror[address]!));
        // File -> guest: new bytes land at the model's addresses and nowhere else.
        const data = randomBytes(len, seed ^ 0x3c);
        writeFileSync(diskPath, data);
        expect(preadv(diskFd, iovecs.address(), iovecs.count, 0)).toBe(len);
        addresses.forEach((address, i) => (mirror[address] = data[i]!));
        expect(fileBytes(imagePath)).toEqual(mirror);
      }),
      { numRuns: 120 },
    );
  });
});

describe("OwnedRequestBuffers", () => {
  test("linear covers pages floor(offset/4096) .. ceil((offset+len)/4096) (the reference was one short)", () => {
    expect(OwnedRequestBuffers.linear(4000, 200, true).gpns).toEqual([0, 1]);
    expect(OwnedRequestBuffers.linear(512, PAGE, true).gpns).toEqual([0, 1]);
    expect(OwnedRequestBuffers.linear(3 * PAGE, PAGE, false).gpns).toEqual([3]);
    const range = OwnedRequestBuffers.linear(PAGE + 100, 50, true).range;
    expect([range.offset, range.len]).toEqual([100, 50]);
  });

  test("property: linear(offset, len) reads guest physical bytes [offset, offset+len)", () => {
    fc.assert(
      fc.property(fc.nat(GUEST_PAGES * PAGE), fc.nat(GUEST_PAGES * PAGE), fc.boolean(), fc.integer(), (offset, len, isWrite, seed) => {
        fc.pre(offset + len <= GUEST_PAGES * PAGE);
        resetGuest(seed);
        const owned = OwnedRequestBuffers.linear(offset, len, isWrite);
        expect(owned.gpns).toEqual(
          Array.from({ length: Math.ceil((offset + len) / PAGE) - Math.floor(offset / PAGE) }, (_, i) => Math.floor(offset / PAGE) + i),
        );
        const buffers = owned.buffer(memory);
        expect(buffers.isWrite).toBe(isWrite);
        expect(buffers.reader().readBytes()).toEqual(mirror.subarray(offset, offset + len));
      }),
      { numRuns: 200 },
    );
  });

  test("new (whole pages) and newUnaligned are guest-writable", () => {
    const whole = OwnedRequestBuffers.new([4, 9]);
    expect([whole.range.offset, whole.range.len, whole.isWrite]).toEqual([0, 2 * PAGE, true]);
    const unaligned = OwnedRequestBuffers.newUnaligned([4, 9], 100, 5000);
    expect([unaligned.range.offset, unaligned.range.len, unaligned.isWrite]).toEqual([100, 5000, true]);
    expect(() => OwnedRequestBuffers.newUnaligned([4], 100, PAGE)).toThrow("does not fit");
    expect(() => OwnedRequestBuffers.linear(-1, 5, true)).toThrow("non-negative integers");
  });

  test("subrange of request buffers keeps the direction", () => {
    const sub = request(0, 2 * PAGE, [1, 2], false).subrange(PAGE, 10);
    expect(sub.isWrite).toBe(false);
    expect(sub.range.gpns()).toEqual([2]);
    expect(request(0, 10, [1]).trySubrange(5, 6)).toBeNull();
  });
});
