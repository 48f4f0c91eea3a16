/**
 * A bench run a user hands back (`report RUN.json`) checked against the layout bench writes,
 * `schema/bench.schema.json`, before any of it is used: a field of the wrong type or a missing
 * one is bad input naming it (`run.json: results[0].latencyUs: must be an object or null`),
 * never an internal error from deep in the report.
 */
import schema from "../../schema/bench.schema.json" with { type: "json" };
import { schemaChecker } from "../base/schema-complaints";

/** Throws bad input naming `name` and the first field of `doc` that breaks the bench schema. */
export const checkBenchSchema = schemaChecker(schema);
