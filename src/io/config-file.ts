/**
 * Node only: the one reader of config files. YAML for .yaml/.yml, JSON otherwise; a file that
 * cannot be read or parsed raises a ConfigError naming the file and what it should hold.
 */
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "../model/config.js";

/** The parsed contents of a config file; `what` ("run config", "model config") names it in errors. */
export async function readConfigFile(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ConfigError(path, [], what, `cannot read (${(e as Error).message}); expected a ${what}`);
  }
  const yaml = /\.ya?ml$/i.test(path);
  try {
    return yaml ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new ConfigError(path, [`not valid ${yaml ? "YAML" : "JSON"} (${(e as Error).message})`], what);
  }
}
