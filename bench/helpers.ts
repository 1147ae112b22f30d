/** Pieces the destination benchmarks share: flags, the hosting tree, the measured backup, child runs. */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { createBackup } from "../runner/src/archive/index";
import type { Destination } from "../runner/src/destinations/types";

export const MiB = 1024 * 1024;

const repo = resolve(import.meta.dirname, "..");

/** `--name value` pairs of the command line (a flag without a value maps to ""). */
export function benchArgs(): Map<string, string> {
  const args = new Map<string, string>();
  for (let i = 2; i < process.argv.length; i++)
    if (process.argv[i]?.startsWith("--")) args.set(process.argv[i]!.slice(2), process.argv[i + 1] ?? "");
  return args;
}

/** The hosting tree of ../shared/bench/make-hosting-dataset.mjs, generated once per size under .tmp/bench. */
export function hostingTree(mib: string): string {
  const tree = join(repo, ".tmp/bench", `hosting-${mib}`);
  if (!existsSync(tree)) {
    mkdirSync(join(repo, ".tmp/bench"), { recursive: true });
    const gen = spawnSync(
      process.execPath,
      [join(repo, "../shared/bench/make-hosting-dataset.mjs"), "--out", tree, "--mib", mib],
      { stdio: "inherit" },
    );
    if (gen.status !== 0) throw new Error("dataset generation failed");
  }
  return tree;
}

/** The backup the destination benchmarks time: panel-key encrypted, zstd level 3, one source tree. */
export function encryptedBackup(tree: string, destination: Destination, outDir: string) {
  return createBackup({
    sources: [tree],
    outDir,
    destination,
    name: "bench",
    kind: "full",
    level: 3,
    encryption: { mode: "panel", dataKey: randomBytes(32), keyId: "bench", wrappedKey: "bench" },
    binding: { backupId: "bk_bench", tenantId: "tn_bench", chainRootId: "bk_bench", parentId: null },
  });
}

/**
 * Runs `command` (a benchmark re-running itself with `--child`) and returns the JSON of the last line
 * it prints; its own peak RSS is then that run's alone.
 */
export function runBenchChild<T>(command: string[], what: string): Promise<T> {
  return new Promise((resolveP, reject) => {
    const c = spawn(command[0]!, command.slice(1), {
      stdio: ["ignore", "pipe", "inherit"],
      // As runner/bin/cairn-runner (the launcher users run) sets it.
      env: { MALLOC_ARENA_MAX: "2", ...process.env },
    });
    let out = "";
    c.stdout.on("data", (d: Buffer) => (out += d.toString()));
    c.on("close", (code) =>
      code === 0
        ? resolveP(JSON.parse(out.trim().split("\n").pop() as string) as T)
        : reject(new Error(`${what} run exited ${code}`)),
    );
  });
}
