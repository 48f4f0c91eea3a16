/**
 * A replay document a user hands back (`report --replay FILE`) checked against the layout
 * replay writes, `schema/replay.schema.json`, before any of it is used: a field of the wrong
 * type or a missing one is bad input naming it, never an internal error deep in the report.
 */
import schema from "../../schema/replay.schema.json" with { type: "json" };
import { schemaChecker } from "../base/schema-complaints";

/** Throws bad input naming `name` and the first field of `doc` that breaks the replay schema. */
export const checkReplaySchema = schemaChecker(schema);
