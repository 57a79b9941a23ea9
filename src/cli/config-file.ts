/**
 * Config files of the processes `convene` starts (gateway, demo-server,
 * start): YAML, which also reads JSON. The file gives the base; flags typed
 * on the command line override it key by key. The modules' validators
 * (validateGatewayConfig, validateDemoServerConfig, validateStartConfig)
 * refuse unknown keys, naming them, so a misspelt key never runs silently
 * with the default; this file only reads. (The member's file is read by
 * loadConfigFile in src/member/member-config.ts, the same way.)
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import type { Command } from "commander";
import type { FieldNames } from "../wire/describe.js";

export type RawConfig = Record<string, unknown>;

export class ConfigFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConfigFileError";
  }
}

const READ_FAILURES: Record<string, string> = {
  ENOENT: "there is no such file",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "it is a directory, not a file",
  ENOTDIR: "a part of the path is not a directory",
  ELOOP: "its symbolic links loop",
  ENAMETOOLONG: "the path is too long",
};

/** Why a file could not be read, in words ("there is no such file"). */
export function readFailure(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return (typeof code === "string" ? READ_FAILURES[code] : undefined) ?? (err instanceof Error ? err.message : String(err));
}

/** Reads a YAML (or JSON) mapping; an empty file is an empty config. */
export function readConfigFile(path: string): RawConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigFileError(`config file ${path} cannot be read: ${readFailure(err)}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new ConfigFileError(`config file ${path} is not valid YAML or JSON: ${(err as Error).message}`, { cause: err });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigFileError(`config file ${path} must be a mapping of key: value, got ${Array.isArray(doc) ? "a list" : JSON.stringify(doc)}`);
  }
  return doc as RawConfig;
}

/**
 * The flags actually typed on the command line, keyed as in the config
 * file: commander's camelCase option name, or `rename[name]` (`data` →
 * `dataDir`). Values stay as typed (strings): the validators convert them
 * and quote them as given when they are wrong. Values from an option's
 * environment variable (CONVENE_TOKEN) count as typed. Commander's defaults are
 * left out: `--no-create` defaults `create` to true, which must not
 * override a file that says false.
 */
export function flagsOf(command: Command, rename: Readonly<Record<string, string>> = {}): RawConfig {
  const flags: RawConfig = {};
  for (const [name, value] of Object.entries(command.opts())) {
    const source = command.getOptionValueSource(name);
    // From the environment too (CONVENE_TOKEN): it overrides the file like a flag.
    if (name === "config" || (source !== "cli" && source !== "env")) continue;
    flags[rename[name] ?? name] = value;
  }
  return flags;
}

/** `--config FILE` when given, with the typed flags laid over it. */
export function configWithFlags(command: Command, rename: Readonly<Record<string, string>> = {}): RawConfig {
  return configAndNames(command, rename).raw;
}

/** configWithFlags, and the FieldNames that name each field as the operator gave it (fieldNamer). */
export function configAndNames(command: Command, rename: Readonly<Record<string, string>> = {}): { raw: RawConfig; names: FieldNames } {
  const path = command.opts<{ config?: string }>().config;
  const fromFile = path === undefined ? {} : readConfigFile(path);
  return { raw: { ...fromFile, ...flagsOf(command, rename) }, names: fieldNamer(command, rename, fromFile) };
}

/**
 * How the validators name a field to the operator who ran `command`: the
 * flag (`--node-id`) when it was typed or when the field has no value at
 * all, `nodeId in FILE` when the value came from the config file, the key
 * itself for a field that has no flag. `rename` maps option names to
 * config keys as in flagsOf.
 */
export function fieldNamer(command: Command, rename: Readonly<Record<string, string>> = {}, fromFile: RawConfig = {}): FieldNames {
  const path = command.opts<{ config?: string }>().config;
  const flags = new Map<string, string>();
  const typed = new Set(Object.keys(flagsOf(command, rename)));
  for (const option of command.options) {
    const name = option.attributeName();
    if (option.long && name !== "config" && !option.negate) flags.set(rename[name] ?? name, option.long);
  }
  return (field) => {
    if (!typed.has(field) && path !== undefined && fromFile[field] !== undefined) return `${field} in ${path}`;
    return flags.get(field) ?? field;
  };
}
