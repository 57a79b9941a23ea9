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

export type RawConfig = Record<string, unknown>;

export class ConfigFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConfigFileError";
  }
}

/** Reads a YAML (or JSON) mapping; an empty file is an empty config. */
export function readConfigFile(path: string): RawConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigFileError(`config file ${path} cannot be read: ${(err as Error).message}`, { cause: err });
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
  const path = command.opts<{ config?: string }>().config;
  return { ...(path === undefined ? {} : readConfigFile(path)), ...flagsOf(command, rename) };
}
