/**
 * The shape of a scenario file, checked against its one definition: `schema/scenario.schema.json`
 * (which editors also use). The schema says which fields exist, which are required, their types
 * and their allowed values; this module runs it and turns its first complaint into the path of
 * the bad field and a sentence (`steps[3].pattern: "plaid" is not one of zero, random, stamp`).
 * What a schema cannot say (sizes and GPN lists that must parse, values that must fit the
 * scenario's own sizes, names that refer to each other) is `format.ts`'s.
 *
 * Steps are checked one by one against the schema of their kind, chosen by the key that names
 * it (`fill`, `io`, ...), so that a bad step gets that kind's complaint rather than the union's.
 */
import Ajv2020, { type ValidateFunction } from "ajv/dist/2020";
import { complain, first, type SchemaObject } from "../base/schema-complaints";
import schema from "../../schema/scenario.schema.json" with { type: "json" };

/** The keys that name a step's kind, in the schema's order. */
export const STEP_KINDS = ["fill", "io", "plan", "check", "concurrent", "linear", "budget", "probe", "request"] as const;

let validators: { root: ValidateFunction; steps: Map<string, ValidateFunction> } | null = null;

/** The compiled schema: the whole file with its steps left out, and each kind of step. Made on first use. */
function compiled(): { root: ValidateFunction; steps: Map<string, ValidateFunction> } {
  if (validators !== null) return validators;
  // verbose: errors carry the bad value; allErrors: the most telling one is chosen (`first`).
  const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: false });
  const full = schema as unknown as SchemaObject;
  ajv.addSchema(full);
  const id = full.$id as string;
  // The root without its steps' shapes (they are checked one by one, below).
  const root = structuredClone(full) as SchemaObject;
  delete root.$id;
  (root.properties as Record<string, SchemaObject>).steps = { type: "array", minItems: 1 } as SchemaObject;
  const steps = new Map<string, ValidateFunction>();
  full.$defs!.step!.oneOf!.forEach((kind, index) => steps.set(kind.title!, ajv.compile({ $ref: `${id}#/$defs/step/oneOf/${index}` })));
  validators = { root: ajv.compile(root), steps };
  return validators;
}

/**
 * Throws the first way `json` breaks the schema, as `fail(path, why)` raises it; returns when it
 * does not.
 */
export function checkScenarioShape(json: unknown, fail: (path: string, why: string) => never): void {
  const { root, steps } = compiled();
  if (!root(json)) complain(first(root.errors!), "", fail);
  (json as { steps: unknown[] }).steps.forEach((step, i) => {
    const path = `steps[${i}]`;
    if (typeof step !== "object" || step === null || Array.isArray(step)) fail(path, "must be an object");
    const kinds = STEP_KINDS.filter((kind) => kind in step);
    if (kinds.length !== 1) fail(path, `a step has exactly one of ${STEP_KINDS.join(", ")} (found ${kinds.length === 0 ? "none" : kinds.join(", ")})`);
    const validate = steps.get(kinds[0]!)!;
    if (!validate(step)) complain(first(validate.errors!), path, fail);
  });
}
