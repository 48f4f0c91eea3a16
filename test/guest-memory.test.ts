/**
 * GuestMemory: a guest image mapped MAP_SHARED. Checked against the image file itself, read and
 * written with plain node:fs.
 */
import { describe, expect, test } from "bun:test";
import { closeSync, mkdirSync, openSync, readSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { GuestAccessError, GuestMemory, ReleasedError } from "../src";
import { NativeRegion } from "../src/native";
import { fileBytes, PAGE, randomBytes, scratchDir, thrown } from "./helpers";

const dir = scratchDir("guest");
let counter = 0;
const fresh = () => join(dir, `image-${counter++}.img`);

describe("creating and opening images", () => {
  test("create makes a sparse image of whole pages, visible as a file", () => {
    const path = fresh();
    using memory = GuestMemory.create(path, 16 * PAGE);
    expect(memory.pageCount).toBe(16);
    expect(memory.size).toBe(16 * PAGE);
    const stat = statSync(path);
    expect(stat.size).toBe(16 * PAGE);
    expect(stat.blocks).toBe(0); // sparse: nothing allocated yet
  });

  test("create refuses an existing file without force and leaves it untouched", () => {
    const path = fresh();
    writeFileSync(path, "precious");
    const error = thrown(() => GuestMemory.create(path, PAGE));
    expect(error.message).toContain("already exists");
    expect(error.kind).toBe("input");
    expect(new TextDecoder().decode(fileBytes(path))).toBe("precious");
  });

  test("create with force replaces a regular file, never a directory", () => {
    const path = fresh();
    writeFileSync(path, "old");
    using memory = GuestMemory.create(path, 2 * PAGE, { force: true });
    expect(statSync(path).size).toBe(2 * PAGE);
    expect(memory.page(0).every((b) => b === 0)).toBe(true);
    const sub = join(dir, "a-directory");
    mkdirSync(sub);
    expect(thrown(() => GuestMemory.create(sub, PAGE, { force: true })).message).toContain("not a regular file");
  });

  test("create never touches /dev", () => {
    expect(thrown(() => GuestMemory.create("/dev/null", PAGE, { force: true })).message).toContain("/dev");
  });

  test("sizes that are not whole pages, and empty images, are refused with a clear error", () => {
    expect(thrown(() => GuestMemory.create(fresh(), 5000)).message).toContain("whole number of 4096-byte pages");
    expect(thrown(() => GuestMemory.create(fresh(), 0)).message).toContain("empty");
    const odd = fresh();
    writeFileSync(odd, new Uint8Array(PAGE + 1));
    expect(thrown(() => GuestMemory.open(odd)).message).toContain("not 4097 bytes");
    const empty = fresh();
    writeFileSync(empty, "");
    expect(thrown(() => GuestMemory.open(empty)).message).toContain("empty");
  });

  test("a missing path or a directory is bad input naming the errno", () => {
    const missing = thrown(() => GuestMemory.open(join(dir, "missing.img")));
    expect(missing.code).toBe("ENOENT");
    expect(missing.kind).toBe("input");
    expect(missing.message).toContain("guest image");
    expect(thrown(() => GuestMemory.open(dir)).code).toBe("EISDIR");
  });
});

describe("access", () => {
  test("bytes written through guest memory are in the image file, and the reverse", () => {
    const path = fresh();
    using memory = GuestMemory.create(path, 8 * PAGE);
    const data = randomBytes(3 * PAGE + 100, 1);
    memory.write(PAGE + 7, data);
    const file = fileBytes(path);
    expect(file.subarray(PAGE + 7, PAGE + 7 + data.length)).toEqual(data);
    expect(file.subarray(0, PAGE + 7).every((b) => b === 0)).toBe(true);

    const fd = openSync(path, "r+");
    writeSync(fd, new Uint8Array([1, 2, 3]), 0, 3, 5 * PAGE);
    closeSync(fd);
    const back = new Uint8Array(3);
    memory.read(5 * PAGE, back);
    expect([...back]).toEqual([1, 2, 3]);
  });

  test("an access past the end names the guest physical address and changes nothing", () => {
    const path = fresh();
    using memory = GuestMemory.create(path, 4 * PAGE);
    memory.fill(0, 4 * PAGE, 0x5a);
    const error = thrown(() => memory.write(3 * PAGE + 100, new Uint8Array(PAGE)));
    expect(error).toBeInstanceOf(GuestAccessError);
    expect(error.message).toBe(
      "guest memory: write failed at 0x3064-0x4063: past the end of guest memory (4 pages, 0x4000 bytes)",
    );
    expect(thrown(() => memory.read(-1, new Uint8Array(1))).message).toContain("not a guest physical address");
    expect(thrown(() => memory.fill(4 * PAGE, 1, 0)).code).toBe("GUEST_ACCESS");
    expect(fileBytes(path).every((b) => b === 0x5a)).toBe(true);
  });

  test("GPNs are checked: negative, fractional, past the end, beyond 2^53", () => {
    using memory = GuestMemory.create(fresh(), 4 * PAGE);
    expect(memory.hasPage(3)).toBe(true);
    for (const gpn of [4, -1, 1.5, Number.NaN, 2 ** 53, 2 ** 60]) expect(memory.hasPage(gpn)).toBe(false);
    expect(thrown(() => memory.page(4)).message).toBe(
      "guest memory: page failed at 0x4000-0x4fff: GPN 4 is past the end of guest memory (4 pages)",
    );
    expect(thrown(() => memory.hostAddress(2 ** 52)).message).toContain("0x10000000000000000-0x10000000000000fff");
    expect(thrown(() => memory.page(-3)).message).toContain("GPN -3: not a page number");
  });

  test("after release every use fails and earlier views are empty, not dangling", () => {
    const memory = GuestMemory.create(fresh(), 2 * PAGE);
    const view = memory.page(1);
    memory.release();
    memory.release(); // idempotent
    expect(view.length).toBe(0);
    expect(thrown(() => memory.read(0, new Uint8Array(1)))).toBeInstanceOf(ReleasedError);
    expect(thrown(() => memory.hostAddress(0))).toBeInstanceOf(ReleasedError);
  });
});

describe("images larger than 4 GiB", () => {
  test("pages beyond 4 GiB and copies across the 1 GiB view boundaries reach the right file bytes", () => {
    const path = fresh();
    const size = 5 * 2 ** 30 + 16 * PAGE;
    using memory = GuestMemory.create(path, size);
    expect(memory.pageCount).toBe(size / PAGE);
    const fd = openSync(path, "r");
    try {
      for (const boundary of [2 ** 30, 2 ** 32, 5 * 2 ** 30]) {
        const at = boundary - 3000;
        const data = randomBytes(2 * PAGE, boundary / PAGE);
        memory.write(at, data);
        const onDisk = new Uint8Array(data.length);
        readSync(fd, onDisk, 0, onDisk.length, at);
        expect(onDisk).toEqual(data);
        const back = new Uint8Array(data.length);
        memory.read(at, back);
        expect(back).toEqual(data);
      }
      const lastGpn = memory.pageCount - 1;
      memory.page(lastGpn).fill(0xee);
      const tail = new Uint8Array(PAGE);
      readSync(fd, tail, 0, PAGE, lastGpn * PAGE);
      expect(tail.every((b) => b === 0xee)).toBe(true);
    } finally {
      closeSync(fd);
    }
    expect(thrown(() => memory.page(memory.pageCount)).message).toContain(`GPN ${memory.pageCount} is past the end`);
  });
});

describe("borrowing memory by address (a public entry point)", () => {
  test("an address this process has not mapped, or not page-aligned, is refused with a clear error, never a crash", () => {
    // Nothing this process maps lands at 4096: mmap places mappings high unless asked for an address.
    expect(() => GuestMemory.borrow(4096, 4096, "x")).toThrow("is not memory this process has mapped readable and writable");
    expect(() => GuestMemory.borrow(4096 + 8, 4096, "x")).toThrow("not a page-aligned range");
    expect(() => GuestMemory.borrow(Number.NaN, 4096, "x")).toThrow("not a page-aligned range");
  });
  test("memory this process mapped is borrowed, and writes land in it", () => {
    using owner = NativeRegion.anonymous(2 * 4096, "owner");
    using borrowed = GuestMemory.borrow(owner.address(0) as number, 2 * 4096, "borrowed");
    borrowed.fill(4096, 16, 0x41);
    expect(Array.from(owner.view(4096, 16))).toEqual(new Array(16).fill(0x41));
  });
});
