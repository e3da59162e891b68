/**
 * The one reader of config files: YAML for .yaml/.yml, JSON otherwise. Text that cannot be parsed,
 * or holds nothing, raises a ConfigError naming the file and what it should hold.
 */
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "../model/config.js";

/**
 * The parsed contents of config text; `source` (a path) names it in errors and picks the syntax
 * by its extension, and `what` ("run config", "model config") says what it should hold.
 */
export function parseConfigText(text: string, source: string, what: string): unknown {
  const yaml = /\.ya?ml$/i.test(source);
  let parsed: unknown;
  try {
    parsed = yaml ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new ConfigError(source, [`not valid ${yaml ? "YAML" : "JSON"} (${(e as Error).message})`], what);
  }
  // An empty YAML document parses to null: say so, rather than "expected object, received null".
  if (parsed === null || parsed === undefined)
    throw new ConfigError(source, [], what, `empty; expected a ${what}`);
  return parsed;
}

/** The parsed contents of a config file; `what` ("run config", "model config") names it in errors. */
export async function readConfigFile(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ConfigError(path, [], what, `cannot read (${(e as Error).message}); expected a ${what}`);
  }
  return parseConfigText(text, path, what);
}
