/**
 * Safetensors metadata values are strings; anr stores JSON in several of them (config, data
 * preparation, checkpoint state, token provenance). One reader for all, so that a damaged value
 * is always reported the same way. Portable.
 */
import { InputError } from "./errors.js";

/**
 * The JSON value of metadata entry `key` (null when absent); a value that is not JSON is an
 * {@link InputError} naming `source` and the key.
 */
export function metadataJson(source: string, metadata: Record<string, string>, key: string): unknown {
  try {
    return JSON.parse(metadata[key] ?? "null");
  } catch (e) {
    throw new InputError(source, `metadata "${key}" is not valid JSON (${(e as Error).message})`);
  }
}
