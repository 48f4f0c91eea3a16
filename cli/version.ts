/** The package version, for `--version` and report headers. */
import packageJson from "../package.json" with { type: "json" };

export const VERSION: string = packageJson.version;
