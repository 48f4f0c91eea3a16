/**
 * A bench run a user hands back (`report RUN.json`) checked against the layout bench writes,
 * `schema/bench.schema.json`, before any of it is used: a field of the wrong type or a missing
 * one is bad input naming it (`run.json: results[0].latencyUs: must be an object or null`),
 * never an internal error from deep in the report.
 */
import Ajv2020, { type ValidateFunction } from "ajv/dist/2020";
import schema from "../../schema/bench.schema.json" with { type: "json" };
import { InvalidInputError } from "../base/errors";
import { complain, first } from "../base/schema-complaints";

let validate: ValidateFunction | null = null;

/** Throws bad input naming `name` and the first field of `doc` that breaks the bench schema. */
export function checkBenchSchema(doc: unknown, name: string): void {
  // verbose: errors carry the bad value; allErrors: the most telling one is chosen (`first`).
  validate ??= new Ajv2020({ allErrors: true, verbose: true, strict: false, validateFormats: false }).compile(schema);
  if (validate(doc)) return;
  complain(first(validate.errors!), "", (path, why) => {
    throw new InvalidInputError(`${name}: ${path}: ${why}`);
  });
}
