/**
 * Loads the project's .proto files (from proto/, found relative to this
 * module so any working directory works) with the options every service
 * uses: field names exactly as written in the .proto, 64-bit integers as
 * JavaScript numbers, defaults filled in.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

export const protoDir = fileURLToPath(new URL("../../proto/", import.meta.url));

export const protoLoaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: Number,
  defaults: true,
  oneofs: true,
};

const cache = new Map<string, grpc.GrpcObject>();
const definitions = new Map<string, protoLoader.PackageDefinition>();

/** The raw definition of a .proto file (for server reflection). */
export function loadDefinition(file: string): protoLoader.PackageDefinition {
  let definition = definitions.get(file);
  if (!definition) {
    definition = protoLoader.loadSync(file, { ...protoLoaderOptions, includeDirs: [protoDir] });
    definitions.set(file, definition);
  }
  return definition;
}

export function loadProto(file: string): grpc.GrpcObject {
  let loaded = cache.get(file);
  if (!loaded) {
    loaded = grpc.loadPackageDefinition(loadDefinition(file));
    cache.set(file, loaded);
  }
  return loaded;
}

/** Walks "a.b.C" in a loaded package. */
export function lookup<T>(pkg: grpc.GrpcObject, path: string): T {
  let at: unknown = pkg;
  for (const part of path.split(".")) at = (at as Record<string, unknown>)[part];
  if (!at) throw new Error(`invariant: ${path} is not in the loaded protos`);
  return at as T;
}
