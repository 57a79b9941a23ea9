/**
 * glibc malloc settings for member processes, which must be in the
 * environment before the process starts (glibc reads them once).
 *
 * Why: a member frees many buffers between 128 KiB and a few MiB (append
 * batches, encoder buffers, a snapshot's parts). glibc's default raises
 * its mmap threshold to the size of each freed mapping, after which such
 * buffers come from its heaps and the freed space is kept there; and each
 * thread (libuv's pool, LevelDB's) may get its own heap. With 100,000
 * meetings and 1 KiB checkpoints a member settled at 449 MiB RSS with
 * 201 MiB of live data; with these settings at 345 MiB
 * (`node --expose-gc --import tsx scripts/member-memory.mts`). Values
 * already in the environment win.
 */
export const MEMBER_MALLOC_ENV: Readonly<Record<string, string>> = {
  // A fixed threshold: big buffers are mapped and unmapped, not cached.
  MALLOC_MMAP_THRESHOLD_: "131072",
  MALLOC_TRIM_THRESHOLD_: "131072",
  MALLOC_ARENA_MAX: "2",
};

/** `env` with the member malloc settings it does not set itself. */
export function memberEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...MEMBER_MALLOC_ENV, ...env };
}
