/**
 * A JSON Schema's complaint (ajv's errors) as the path of the bad field and a sentence, for any of
 * bounce-bench's schemas: `steps[3].pattern: "plaid" is not one of zero, random, stamp`, or
 * `results[0].latencyUs: must be an object or null`. Used where a file a user hands over is
 * checked against its schema: scenario files, and the bench runs and replays `report` reads
 * (`schemaChecker`).
 */
import Ajv2020, { type ErrorObject, type ValidateFunction } from "ajv/dist/2020";
import { InvalidInputError } from "./errors";

export type SchemaObject = { title?: string; properties?: Record<string, unknown>; $ref?: string; oneOf?: SchemaObject[]; $defs?: Record<string, SchemaObject> } & Record<string, unknown>;

/**
 * The complaint that says most: a misspelled field before the required one it stands for, a
 * wrong value before a wrong type, and the deepest of those (the field itself, not its parent).
 */
export function first(errors: ErrorObject[]): ErrorObject {
  // A choice between fields (seg or gpns) says more than the one field it finds missing.
  const keyword = (error: ErrorObject) => (error.keyword === "oneOf" && /\$defs\/(size|gpns|segment)\//.test(error.schemaPath) ? "other" : error.keyword);
  const rank = (error: ErrorObject) => ["additionalProperties", "enum", "const", "type", "oneOf", "required"].indexOf(keyword(error)) + 1 || 9;
  const depth = (error: ErrorObject) => error.instancePath.split("/").length;
  return [...errors].sort((a, b) => rank(a) - rank(b) || depth(b) - depth(a))[0]!;
}

/** What a value of each of the schema's named kinds looks like, for complaints about one. */
const KINDS_OF_VALUE: Record<string, string> = {
  size: 'a size (a whole number, or a string such as "4k" or "0x1000")',
  gpns: 'a GPN list (a string such as "0-3,7")',
  segment: 'a segment (a string GPNS[@OFFSET][+LEN] such as "0-1@512+3584")',
};

/** An ajv complaint as the path of the field and a sentence. */
export function complain(error: ErrorObject, base: string, fail: (path: string, why: string) => never): never {
  const kind = /\/\$defs\/(size|gpns|segment)\//.exec(error.schemaPath)?.[1];
  const at = error.instancePath
    .split("/")
    .slice(1)
    .map((part) => part.replaceAll("~1", "/").replaceAll("~0", "~"))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path === "" ? part : `${path}.${part}`), base);
  const join = (path: string, key: string) => (path === "" ? key : `${path}.${key}`);
  const params = error.params as Record<string, unknown>;
  if (kind !== undefined && error.keyword !== "required" && error.keyword !== "additionalProperties") {
    return fail(at || "(top level)", `${JSON.stringify(error.data)} is not ${KINDS_OF_VALUE[kind]}`);
  }
  switch (error.keyword) {
    case "minItems":
      return fail(at || "(top level)", `needs at least ${String(params.limit)} item${params.limit === 1 ? "" : "s"}`);
    case "minLength":
      return fail(at || "(top level)", params.limit === 1 ? "must not be empty" : `must be at least ${String(params.limit)} characters`);
    case "minimum":
    case "maximum":
      return fail(at || "(top level)", `${JSON.stringify(error.data)} is ${error.keyword === "minimum" ? "below" : "above"} ${String(params.limit)}, the ${error.keyword === "minimum" ? "least" : "most"} allowed`);
    case "required":
      return fail(join(at, String(params.missingProperty)), "is missing");
    case "additionalProperties": {
      const allowed = Object.keys(((error.parentSchema as SchemaObject | undefined)?.properties ?? {}) as object);
      return fail(join(at, String(params.additionalProperty)), `unknown field${allowed.length > 0 ? ` (expected one of ${allowed.join(", ")})` : ""}`);
    }
    case "enum":
      return fail(at || "(top level)", `${JSON.stringify(error.data)} is not one of ${(params.allowedValues as unknown[]).join(", ")}`);
    case "oneOf":
      // The schema's only choices between fields: a step's buffers are seg or gpns.
      return fail(
        at || "(top level)",
        typeof error.data === "object" && error.data !== null && "seg" in error.data
          ? "seg (a list of segments) cannot be combined with gpns/offset/len"
          : "needs seg (a list of segments) or gpns",
      );
    case "const":
      return fail(at || "(top level)", `must be ${JSON.stringify(params.allowedValue)}`);
    case "type":
      return fail(at || "(top level)", `${error.data === undefined ? "is missing" : `must be ${article(String(params.type))}`}`);
    default:
      return fail(at || "(top level)", `${error.message ?? "is not valid"}${error.data !== undefined && typeof error.data !== "object" ? ` (${JSON.stringify(error.data)})` : ""}`);
  }
}

function article(type: string): string {
  const names = type.split(",").map((name) => ({ object: "an object", array: "a list", string: "a string", integer: "a whole number", number: "a number", boolean: "true or false", null: "null" })[name] ?? name);
  return names.join(" or ");
}

/**
 * A check of documents a user hands back against `schema` (one of those a command writes): it
 * throws bad input naming the document (`name`) and its first bad field. Compiled on first use.
 */
export function schemaChecker(schema: object): (doc: unknown, name: string) => void {
  let validate: ValidateFunction | null = null;
  return (doc, name) => {
    // verbose: errors carry the bad value; allErrors: the most telling one is chosen (`first`).
    validate ??= new Ajv2020({ allErrors: true, verbose: true, strict: false, validateFormats: false }).compile(schema);
    if (validate(doc)) return;
    complain(first(validate.errors!), "", (path, why) => {
      throw new InvalidInputError(`${name}: ${path}: ${why}`);
    });
  };
}
