/**
 * fio's names for bounce-bench's options, so that fio habits work: `--rw` for `--op`,
 * `--iodepth` for `--qd`, `--numjobs` for `--threads`, and `--ioengine` for `--engine` with
 * fio's engine names (`io_uring` is `uring`; `psync`, `pvsync` and `sync` are bounce-bench's
 * `sync`, which is vectored like `pvsync`; `null` is `null`). The command line is translated
 * before commander reads it, in the commands that have the option; giving both names is bad
 * input. (Durations like `30s` and `2m`, and `T` sizes, are the value parsers'.)
 */
import { InvalidInputError } from "../src/base/errors";

interface Alias {
  to: string;
  commands: readonly string[];
  map?: (value: string) => string;
}

const FIO_ENGINES: Record<string, string> = { io_uring: "uring", psync: "sync", pvsync: "sync", sync: "sync", null: "null" };

const ALIASES: Record<string, Alias> = {
  "--rw": { to: "--op", commands: ["bench", "io", "plan"] },
  "--iodepth": { to: "--qd", commands: ["bench"] },
  "--numjobs": { to: "--threads", commands: ["bench"] },
  "--ioengine": {
    to: "--engine",
    commands: ["bench"],
    map: (value) => {
      const engine = FIO_ENGINES[value];
      if (engine === undefined) {
        throw new InvalidInputError(`--ioengine ${value}: bounce-bench's engines are fio's ${Object.keys(FIO_ENGINES).join(", ")} (as --engine uring, sync or null)`);
      }
      return engine;
    },
  },
};

/** `argv` with fio's option names turned into bounce-bench's, for the command it names. */
export function translateFioOptions(argv: readonly string[]): string[] {
  const command = argv.find((arg) => !arg.startsWith("-"));
  const out: string[] = [];
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const [name, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const alias = ALIASES[name];
    if (alias === undefined || command === undefined || !alias.commands.includes(command)) {
      if (name.startsWith("--")) given.add(name);
      out.push(arg);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new InvalidInputError(`${name} needs a value (fio's name for ${alias.to})`);
    given.add(`alias:${alias.to}`);
    out.push(alias.to, alias.map === undefined ? value : alias.map(value));
  }
  for (const [name, alias] of Object.entries(ALIASES)) {
    if (given.has(`alias:${alias.to}`) && given.has(alias.to)) throw new InvalidInputError(`${name} is fio's name for ${alias.to}: give one of them`);
  }
  return out;
}
