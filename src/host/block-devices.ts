/**
 * Whether a block device the user offers for writing (`--overwrite-device`) is free to be
 * overwritten, as fio checks before it writes one: not mounted, not swap, not partitioned (its
 * partitions would be overwritten with it), not held by another device (LVM, MD, device
 * mapper) and not the backing file of a loop device. Everything is read from the kernel's own
 * lists (/proc/self/mountinfo, /proc/swaps, /sys/dev/block/M:m), by device number, so no name or
 * symlink can stand in for another device. The mount and loop tables are also what scratch
 * teardown reads (`scratch-dir.ts`): one reader of each.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { statx } from "../native";

/** Why the device `major:minor` must not be overwritten, or null when nothing uses it. */
export function deviceInUse(major: number, minor: number): string | null {
  const self = `${major}:${minor}`;
  const sys = `/sys/dev/block/${self}`;
  const partitions = childPartitions(sys);
  const devices = [self, ...partitions.map((p) => p.device)];
  const mounted = mountPointsOf(new Set(devices));
  if (mounted.length > 0) return `it is mounted (${mounted.join(", ")})`;
  const swap = swapDevicesAmong(new Set(devices));
  if (swap.length > 0) return `it is in use as swap (${swap.join(", ")})`;
  if (partitions.length > 0) return `it holds partitions (${partitions.map((p) => p.name).join(", ")}), which writing it would overwrite`;
  const holders = listDir(join(sys, "holders"));
  if (holders.length > 0) return `it is held by ${holders.join(", ")} (a device built on it)`;
  // A loop device over it opens it without claiming it, so sysfs lists no holder: ask each loop.
  const loops = loopsOver(new Set(devices));
  if (loops.length > 0) return `it backs ${loops.join(", ")} (a loop device over it)`;
  return null;
}

/** Loop devices whose backing file is one of `devices` (compared by device number). */
function loopsOver(devices: Set<string>): string[] {
  return loopTable()
    .filter((loop) => {
      try {
        const status = statx(loop.backing);
        return status.type === "block-device" && devices.has(`${status.rdevMajor}:${status.rdevMinor}`);
      } catch {
        return false; // its backing file is gone
      }
    })
    .map((loop) => loop.name);
}

/** The partitions under a device's sysfs directory: subdirectories with a `partition` file. */
function childPartitions(sys: string): { name: string; device: string }[] {
  const found: { name: string; device: string }[] = [];
  for (const name of listDir(sys)) {
    try {
      readFileSync(join(sys, name, "partition"), "utf8");
      found.push({ name, device: readFileSync(join(sys, name, "dev"), "utf8").trim() });
    } catch {
      // not a partition
    }
  }
  return found;
}

/** Mount points whose source is one of `devices` ("major:minor"). */
function mountPointsOf(devices: Set<string>): string[] {
  return mountTable()
    .filter((mount) => devices.has(mount.device))
    .map((mount) => mount.point);
}

/**
 * Every mount this process sees: its source device ("major:minor"), its mount point (octal
 * escapes undone) and its per-mount options (`rw,relatime`), from /proc/self/mountinfo.
 */
export function mountTable(): { device: string; point: string; options: string }[] {
  let text = "";
  try {
    text = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  const mounts: { device: string; point: string; options: string }[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    if (fields.length > 5) mounts.push({ device: fields[2]!, point: fields[4]!.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))), options: fields[5]! });
  }
  return mounts;
}

/** Every bound loop device: its name (`loop3`) and its backing file's path as sysfs gives it. */
export function loopTable(): { name: string; backing: string }[] {
  const loops: { name: string; backing: string }[] = [];
  for (const name of listDir("/sys/block").filter((entry) => entry.startsWith("loop"))) {
    try {
      loops.push({ name, backing: readFileSync(`/sys/block/${name}/loop/backing_file`, "utf8").trim() });
    } catch {
      // not bound
    }
  }
  return loops;
}

/** Swap areas (/proc/swaps) that are one of `devices`, by their device numbers. */
function swapDevicesAmong(devices: Set<string>): string[] {
  let text = "";
  try {
    text = readFileSync("/proc/swaps", "utf8");
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const line of text.split("\n").slice(1)) {
    const path = line.split(/\s+/)[0];
    if (path === undefined || path === "") continue;
    try {
      const status = statx(path.replace(/\\040/g, " "));
      if (status.type === "block-device" && devices.has(`${status.rdevMajor}:${status.rdevMinor}`)) found.push(path);
    } catch {
      // gone
    }
  }
  return found;
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}
