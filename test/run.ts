/**
 * `npm test`: runs `bun test` (arguments passed through), then repeats every failure's message
 * after the summary. bun prints a failure's diff where the test ran, which in a long log (or a
 * CI excerpt that keeps only the tail) is far from the "N tests failed" list at the end; the
 * recap puts what went wrong next to the names. It reads bun's own JUnit report, written into a
 * private temporary directory and removed afterwards. The exit status is bun's.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "bounce-bench-test-report-"));
try {
  const report = join(dir, "junit.xml");
  const run = Bun.spawnSync([process.execPath, "test", "--timeout", "60000", "--reporter=junit", `--reporter-outfile=${report}`, ...process.argv.slice(2)], {
    stdio: ["inherit", "inherit", "inherit"],
  });
  let xml = "";
  try {
    xml = readFileSync(report, "utf8");
  } catch {
    // bun wrote no report (it failed before running a test): its own output says why.
  }
  const failures = failuresIn(xml);
  if (failures.length > 0) {
    console.error(`\n${failures.length} failed, in full:`);
    for (const { file, name, message } of failures) console.error(`\n(fail) ${file} > ${name}\n${message.trimEnd()}`);
  }
  process.exitCode = run.exitCode ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** Each failed test case of a JUnit report: its file, name and failure text. */
function failuresIn(xml: string): { file: string; name: string; message: string }[] {
  const failures: { file: string; name: string; message: string }[] = [];
  for (const match of xml.matchAll(/<testcase\b([^>]*?)(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
    // A failure with its text inside, or an empty one with only attributes (a timeout).
    const failure = /<failure\b([^>]*?)(?:\/>|>([\s\S]*?)<\/failure>)/.exec(match[2] ?? "");
    if (failure === null) continue;
    const attribute = (from: string, key: string) => unescapeXml(new RegExp(`\\b${key}="([^"]*)"`).exec(from)?.[1] ?? "");
    const message = failure[2] !== undefined ? unescapeXml(failure[2]) : `${attribute(failure[1]!, "type")}: ${attribute(failure[1]!, "message")}`;
    failures.push({ file: attribute(match[1]!, "file"), name: attribute(match[1]!, "name"), message });
  }
  return failures;
}

function unescapeXml(text: string): string {
  return text.replace(/&(#\d+|#x[0-9a-f]+|lt|gt|amp|quot|apos);/gi, (_, entity: string) => {
    if (entity[0] === "#") return String.fromCodePoint(entity[1] === "x" || entity[1] === "X" ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10));
    return { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" }[entity.toLowerCase()]!;
  });
}
