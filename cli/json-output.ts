/**
 * Every `--json` document bounce-bench prints: one JSON object on one line that starts with who
 * made it (`tool`, `version`), the layout it follows (`schemaVersion`) and the command that made
 * it (`command`), then the command's own fields. The layouts are in `schema/` (one JSON Schema
 * per command, and one for errors), checked against real output by the tests.
 *
 * Schema versions: 1 was the layout before these fields existed; 2 added them, and with them
 * bench's repeats and the names below; 3 made probe's kernelChecks an object (measured, not
 * inferred) and added bench's kernelChecks, fileLocks and pageCache. A field renamed in 2 keeps
 * its old name as well, until 4 (README, "JSON documents").
 */
import { VERSION } from "./version";

/** The layout of every document: bumped when a field changes meaning or shape. */
export const SCHEMA_VERSION = 3;

export type JsonCommand = "probe" | "plan" | "io" | "bench" | "compare" | "report" | "repro" | "image create" | "trace capture" | "trace convert" | "replay" | "version";

/** The document `command` prints: the envelope, then `body`'s fields. */
export function jsonDocument(command: JsonCommand | null, body: Record<string, unknown>): Record<string, unknown> {
  return { tool: "bounce-bench", version: VERSION, schemaVersion: SCHEMA_VERSION, command, ...body };
}

/** `jsonDocument` as the one line printed. */
export function jsonLine(command: JsonCommand | null, body: Record<string, unknown>): string {
  return `${JSON.stringify(jsonDocument(command, body))}\n`;
}
