/**
 * The boxed tables people read (`compare`, `repro`, `plan`, the bench scripts) are drawn by
 * `cli/format.ts`'s `table`, in time linear in the cells. cli-table3, which drew them before, is
 * the reference model: on random heads and cells (several lines, wide characters, empty ones) the
 * two draw the same text.
 */
import { expect, test } from "bun:test";
import Table from "cli-table3";
import fc from "fast-check";
import { table } from "../cli/format";

const cellText = fc.array(fc.constantFrom("a", "Z", "0", " ", "-", "é", "中", "☃", "\n", "|"), { maxLength: 12 }).map((chars) => chars.join(""));

test("draws what cli-table3's compact style draws: head, rule, rows, any number of lines per cell, left or right aligned", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }).chain((columns) =>
        fc.record({
          head: fc.array(cellText, { minLength: columns, maxLength: columns }),
          rows: fc.array(fc.array(cellText, { minLength: columns, maxLength: columns }), { maxLength: 6 }),
          align: fc.array(fc.constantFrom("left" as const, "right" as const), { minLength: columns, maxLength: columns }),
        }),
      ),
      ({ head, rows, align }) => {
        // cli-table3 trims a cell's trailing blanks and drops a last empty line; the cells here
        // come from bounce-bench's own formatting, which has neither.
        const clean = (text: string) => text.split("\n").map((line) => line.trim() || "x").join("\n");
        const h = head.map(clean);
        const r = rows.map((row) => row.map(clean));
        const reference = new Table({ head: h, colAligns: align, style: { head: [], border: [], compact: true } });
        reference.push(...r);
        expect(table(h, r, align)).toBe(`${reference.toString()}\n`);
      },
    ),
    { numRuns: 300 },
  );
});

test("numbers and missing cells: a number is its decimal text, a short row is padded with empty cells", () => {
  expect(table(["n", "x"], [[12, "a"], [3]])).toBe(["┌────┬───┐", "│ n  │ x │", "├────┼───┤", "│ 12 │ a │", "│ 3  │   │", "└────┴───┘", ""].join("\n"));
});
