/**
 * Every gRPC method a coordinator member serves, for the fuzz test: the
 * public services of proto/convene.proto and proto/routes.proto, the
 * members' MemberAdmin and RaftTransport, and the standard health and
 * reflection services. Each with its path, call kind and request codec (as
 * proto-loader builds it, with the options the members use), so a test
 * can encode a hostile request, decode it as the server will, and judge
 * what the answer must be.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { loadProto, lookup, protoLoaderOptions } from "../../src/wire/proto.js";
import { type CallKind, kindOf } from "./raw-grpc.js";

export interface MethodInfo {
  /** "convene.v1.NodeAgent/Register". */
  readonly id: string;
  readonly service: string;
  readonly name: string;
  readonly path: string;
  readonly kind: CallKind;
  /** The request message's type name, e.g. "RegisterRequest". */
  readonly requestType: string;
  readonly serialize: (value: unknown) => Buffer;
  readonly deserialize: (bytes: Buffer) => Record<string, unknown>;
}

type MethodDefinition = grpc.MethodDefinition<unknown, unknown> & { requestType?: { type?: { name?: string } } };

function methodsOf(service: string, definition: grpc.ServiceDefinition): MethodInfo[] {
  return Object.entries(definition).map(([name, def]) => {
    const m = def as MethodDefinition;
    return {
      id: `${service}/${name}`,
      service,
      name,
      path: m.path,
      kind: kindOf(m),
      requestType: m.requestType?.type?.name ?? "request",
      serialize: m.requestSerialize as (value: unknown) => Buffer,
      deserialize: m.requestDeserialize as (bytes: Buffer) => Record<string, unknown>,
    };
  });
}

function fromPackage(file: string, service: string): MethodInfo[] {
  return methodsOf(service, lookup<grpc.ServiceClientConstructor>(loadProto(file), service).service);
}

function fromFile(path: string, service: string, includeDirs: string[] = []): MethodInfo[] {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(path, { ...protoLoaderOptions, includeDirs }));
  return methodsOf(service, lookup<grpc.ServiceClientConstructor>(pkg, service).service);
}

/** Every method a member with `--app coordinator` serves (its Kv service is off in that mode). */
export function memberMethods(): MethodInfo[] {
  const require = createRequire(import.meta.url);
  const reflectionProtos = join(dirname(require.resolve("@grpc/reflection/package.json")), "build", "proto");
  return [
    ...fromPackage("convene.proto", "convene.v1.NodeAgent"),
    ...fromPackage("convene.proto", "convene.v1.Coordinator"),
    ...fromPackage("routes.proto", "convene.routes.v1.RouteFeed"),
    ...fromPackage("member.proto", "convene.member.v1.MemberAdmin"),
    ...fromPackage("raft.proto", "convene.raft.v1.RaftTransport"),
    ...fromFile(healthProtoPath, "grpc.health.v1.Health"),
    ...fromFile("grpc/reflection/v1/reflection.proto", "grpc.reflection.v1.ServerReflection", [reflectionProtos]),
    ...fromFile("grpc/reflection/v1alpha/reflection.proto", "grpc.reflection.v1alpha.ServerReflection", [reflectionProtos]),
  ];
}
