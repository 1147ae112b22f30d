/**
 * Auto-sync cost: an encrypted backup (panel key, zstd 3) of the hosting tree written
 *   - to a local directory only, and
 *   - to a local directory AND S3 (s3rver on loopback) at once through FanoutDestination (one read).
 *   tsx bench/auto-sync.ts [--tree-mib 256] [--part-mib 8] [--queue 4]
 * Each run is its own child process (peak RSS is that run's maxRSS); s3rver runs in another process.
 * Prints MiB/s, runner CPU, peak RSS, the ratio, and checks the S3 object's sha256 against the archive's.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createBackup } from "../runner/src/archive/index";
import { LocalDestination } from "../runner/src/destinations/local";
import { S3Destination } from "../runner/src/destinations/s3";
import { FanoutDestination } from "../runner/src/jobs/fanout-destination";
import { startS3Server } from "../tests/destinations/s3-server";

const MiB = 1024 * 1024;
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i++)
  if (process.argv[i]?.startsWith("--")) args.set(process.argv[i]!.slice(2), process.argv[i + 1] ?? "");
const repo = resolve(fileURLToPath(import.meta.url), "../..");

interface Result {
  target: string;
  secs: number;
  bytesIn: number;
  bytesOut: number;
  cpuSecs: number;
  maxRssMiB: number;
  copyOk?: boolean;
}

async function child(target: string): Promise<void> {
  const localDir = await mkdtemp(join(tmpdir(), "cairn-bench-autosync-"));
  const s3 = new S3Destination({
    type: "s3",
    bucket: "bench",
    prefix: `autosync-${Date.now()}`,
    endpoint: args.get("endpoint"),
    region: "us-east-1",
    pathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    partSize: Number(args.get("part-mib") ?? 8) * MiB,
    queueSize: Number(args.get("queue") ?? 4),
  });
  const local = new LocalDestination(localDir);
  const fan =
    target === "local+s3" ? new FanoutDestination(local, [{ destinationId: "s3", dest: s3 }]) : undefined;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let copyOk: boolean | undefined;
  try {
    const r = await createBackup({
      sources: [args.get("tree")!],
      outDir: localDir,
      destination: fan ?? local,
      name: "bench",
      kind: "full",
      level: 3,
      encryption: { mode: "panel", dataKey: randomBytes(32), keyId: "bench", wrappedKey: "bench" },
      binding: { backupId: "bk_bench", tenantId: "tn_bench", chainRootId: "bk_bench", parentId: null },
    });
    const cpu = process.cpuUsage(cpu0);
    const secs = (performance.now() - t0) / 1000;
    if (fan) {
      const [c] = fan.results(r.fileName, r.manifestFileName);
      const h = createHash("sha256");
      for await (const chunk of await s3.createReadStream(r.fileName)) h.update(chunk as Buffer);
      copyOk = c?.status === "completed" && h.digest("hex") === r.sha256;
    }
    const out: Result = {
      target,
      secs,
      bytesIn: r.bytesIn,
      bytesOut: r.size,
      cpuSecs: (cpu.user + cpu.system) / 1e6,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
      ...(copyOk !== undefined && { copyOk }),
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    await s3.close();
    await rm(localDir, { recursive: true, force: true });
  }
}

function runChild(target: string, extra: string[]): Promise<Result> {
  return new Promise((resolveP, reject) => {
    const c = spawn(
      process.execPath,
      ["--import", "tsx", fileURLToPath(import.meta.url), "--child", target, ...extra],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    c.stdout.on("data", (d: Buffer) => (out += d.toString()));
    c.on("close", (code) =>
      code === 0
        ? resolveP(JSON.parse(out.trim().split("\n").pop() as string) as Result)
        : reject(new Error(`${target} run exited ${code}`)),
    );
  });
}

async function main(): Promise<void> {
  const treeMib = args.get("tree-mib") ?? "256";
  const tree = join(repo, ".tmp/bench", `hosting-${treeMib}`);
  if (!existsSync(tree)) {
    mkdirSync(join(repo, ".tmp/bench"), { recursive: true });
    const gen = spawnSync(
      process.execPath,
      [join(repo, "../shared/bench/make-hosting-dataset.mjs"), "--out", tree, "--mib", treeMib],
      { stdio: "inherit" },
    );
    if (gen.status !== 0) throw new Error("dataset generation failed");
  }
  const tuning = ["part-mib", "queue"].flatMap((k) => (args.has(k) ? [`--${k}`, args.get(k)!] : []));
  const s3 = await startS3Server(["bench"]);
  try {
    console.log(
      `encrypted backup of the ${treeMib} MiB hosting tree: local only vs local + S3 auto-sync (one read)`,
    );
    const results: Result[] = [];
    for (const target of ["local", "local+s3"]) {
      const r = await runChild(target, ["--tree", tree, "--endpoint", s3.endpoint, ...tuning]);
      results.push(r);
      console.log(
        `${target.padEnd(10)} in ${(r.bytesIn / MiB).toFixed(0)} MiB, out ${(r.bytesOut / MiB).toFixed(0)} MiB, ${r.secs.toFixed(2)} s = ${(r.bytesIn / MiB / r.secs).toFixed(1)} MiB/s in, runner CPU ${r.cpuSecs.toFixed(1)} s, peak RSS ${r.maxRssMiB.toFixed(0)} MiB${r.copyOk === undefined ? "" : `, S3 copy ${r.copyOk ? "verified (sha256)" : "MISMATCH"}`}`,
      );
    }
    const [local, both] = results as [Result, Result];
    console.log(`throughput ratio (local+S3)/local: ${(local.secs / both.secs).toFixed(2)}x`);
    if (both.copyOk !== true) process.exitCode = 1;
  } finally {
    await s3.close();
  }
}

if (args.has("child")) await child(args.get("child")!);
else await main();
