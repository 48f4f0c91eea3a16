/**
 * Human-readable output: small key/value blocks and boxed tables. JSON output never goes
 * through here.
 */
import { hex } from "../src/base/errors";
import type { AlignmentJson } from "../src/io/json-documents";

/** `key  value` lines, keys padded; a list value continues on indented lines. */
export function keyValues(rows: [string, string | string[]][]): string {
  const width = Math.max(...rows.map(([key]) => key.length)) + 2;
  const lines: string[] = [];
  for (const [key, value] of rows) {
    const values = Array.isArray(value) ? (value.length === 0 ? ["-"] : value) : [value];
    values.forEach((text, i) => lines.push(`${(i === 0 ? key : "").padEnd(width)}${text}`));
  }
  return `${lines.join("\n")}\n`;
}

/**
 * A boxed table: the head, a rule, then the rows, with no rule between rows; a cell may hold
 * several lines; `align` right-aligns the columns that say so. The same drawing as cli-table3's compact style, in time linear in the cells
 * (cli-table3's grows with the square of the rows: 10,000 rows took seconds).
 */
export function table(head: string[], rows: (string | number)[][], align: ("left" | "right")[] = []): string {
  const lines = (row: (string | number)[]) => head.map((_, column) => String(row[column] ?? "").split("\n"));
  const body = rows.map(lines);
  const header = lines(head);
  const widths = head.map((_, column) => {
    let width = 0;
    for (const row of [header, ...body]) for (const line of row[column]!) width = Math.max(width, Bun.stringWidth(line));
    return width;
  });
  const rule = (left: string, middle: string, right: string) => `${left}${widths.map((width) => "─".repeat(width + 2)).join(middle)}${right}`;
  const out = [rule("┌", "┬", "┐")];
  const draw = (row: string[][]) => {
    const height = row.reduce((most, cell) => Math.max(most, cell.length), 1);
    for (let i = 0; i < height; i++) {
      out.push(`│ ${row.map((cell, column) => pad(cell[i] ?? "", widths[column]!, align[column])).join(" │ ")} │`);
    }
  };
  draw(header);
  if (body.length > 0) out.push(rule("├", "┼", "┤"));
  for (const row of body) draw(row);
  out.push(rule("└", "┴", "┘"));
  return `${out.join("\n")}\n`;
}

function pad(text: string, width: number, align: "left" | "right" = "left"): string {
  const fill = " ".repeat(Math.max(0, width - Bun.stringWidth(text)));
  return align === "right" ? fill + text : text + fill;
}

export function describeAlignment(alignment: AlignmentJson): string {
  const read = alignment.readOffsetAlign !== alignment.offsetAlign ? `, reads ${alignment.readOffsetAlign}` : "";
  return `memory ${alignment.memAlign}, offset ${alignment.offsetAlign}${read} (${alignment.source})`;
}

export function iovecText(iovec: { gpa: number; len: number }): string {
  return `${hex(iovec.gpa)}+${iovec.len}`;
}

/**
 * Each line of `text` wrapped at spaces to `width` columns, continuation lines indented by the
 * line's own leading spaces and `indent`; a word longer than the width stays whole on a line of
 * its own.
 */
export function wrapLines(text: string, width = terminalWidth(), indent = "  "): string {
  // A line's own indent stays (table rows in a footer), and continuations get it too.
  return text
    .split("\n")
    .map((line) => hanging(line, width, /^ */.exec(line)![0].length + indent.length))
    .join("\n");
}

/** The terminal's width: `COLUMNS`, else the tty's, else 100. */
export function terminalWidth(): number {
  const fromEnv = Number(process.env.COLUMNS);
  if (Number.isInteger(fromEnv) && fromEnv > 20) return fromEnv;
  return process.stdout.isTTY && process.stdout.columns > 20 ? process.stdout.columns : 100;
}

/**
 * Help text fitted to `width` columns, line by line. An example (`  $ command  what it shows`)
 * too long for the width puts what it shows on the next line and breaks the command with ` \`
 * continuations, as a shell would take it; a line of columns (`  name  head  what it is`) wraps
 * under its last column; any other line wraps at spaces.
 */
export function fitHelp(text: string, width = terminalWidth()): string {
  return text
    .split("\n")
    .map((line) => {
      if (line.length <= width) return line;
      const example = /^( *)\$ (.*?)(?: {2,}(\S.*))?$/.exec(line);
      if (example !== null) {
        const [, lead, command, comment] = example as unknown as [string, string, string, string | undefined];
        const lines = hanging(`${lead}$ ${command}`, width - 2, lead.length + 4).split("\n");
        const shell = lines.map((part, i) => (i < lines.length - 1 ? `${part} \\` : part));
        return [...shell, ...(comment === undefined ? [] : [hanging(`${lead}    ${comment}`, width, lead.length + 4)])].join("\n");
      }
      const columns = [...line.matchAll(/ {2,}(?=\S)/g)].map((gap) => gap.index + gap[0].length).filter((at) => at <= width - 20);
      return hanging(line, width, columns.at(-1) ?? /^ */.exec(line)![0].length + 2);
    })
    .join("\n");
}

/**
 * `line` wrapped at spaces to `width`, its leading spaces kept, continuation lines starting at
 * column `hang`; spaces inside a line stay as they are; a word longer than the width stays whole.
 */
function hanging(line: string, width: number, hang: number): string {
  const lead = /^ */.exec(line)![0];
  const out: string[] = [];
  let current = "";
  let prefix = lead;
  for (const word of line.slice(lead.length).split(" ")) {
    if (current.length > 0 && prefix.length + current.length + 1 + word.length > width) {
      out.push(prefix + current);
      current = word;
      prefix = " ".repeat(hang);
    } else {
      current = current.length === 0 ? word : `${current} ${word}`;
    }
  }
  out.push(prefix + current);
  return out.join("\n");
}

/** An amount of bytes for people: `512 bytes`, `4.0 KiB`, `1.5 MiB`, `2.0 GiB`. */
export function byteAmount(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
