/**
 * Human-readable output: small key/value blocks and cli-table3 tables. JSON output never goes
 * through here.
 */
import Table from "cli-table3";
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

export function table(head: string[], rows: (string | number)[][]): string {
  const output = new Table({ head, style: { head: [], border: [], compact: true } });
  output.push(...rows.map((row) => row.map(String)));
  return `${output.toString()}\n`;
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
export function wrapLines(text: string, width = 100, indent = "  "): string {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    // A line's own indent stays (table rows in a footer), and continuations get it too.
    const lead = /^ */.exec(line)![0];
    let current = "";
    let prefix = lead;
    for (const word of line.slice(lead.length).split(" ")) {
      if (current.length > 0 && prefix.length + current.length + 1 + word.length > width) {
        out.push(prefix + current);
        current = word;
        prefix = lead + indent;
      } else {
        current = current.length === 0 ? word : `${current} ${word}`;
      }
    }
    out.push(prefix + current);
  }
  return out.join("\n");
}
