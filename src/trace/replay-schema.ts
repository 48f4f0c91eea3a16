/**
 * A replay document a user hands back (`report --replay FILE`) checked against the layout
 * replay writes, `schema/replay.schema.json`, before any of it is used: a field of the wrong
 * type or a missing one is bad input naming it, never an internal error deep in the report.
 */
import Ajv2020, { type ValidateFunction } from "ajv/dist/2020";
import schema from "../../schema/replay.schema.json" with { type: "json" };
import { InvalidInputError } from "../base/errors";
import { complain, first } from "../base/schema-complaints";

let validate: ValidateFunction | null = null;

/** Throws bad input naming `name` and the first field of `doc` that breaks the replay schema. */
export function checkReplaySchema(doc: unknown, name: string): void {
  validate ??= new Ajv2020({ allErrors: true, verbose: true, strict: false, validateFormats: false }).compile(schema);
  if (validate(doc)) return;
  complain(first(validate.errors!), "", (path, why) => {
    throw new InvalidInputError(`${name}: ${path}: ${why}`);
  });
}
