/**
 * Auto-sync cost: an encrypted backup (panel key, zstd 3) of the hosting tree written
 *   - to a local directory only, and
 *   - to a local directory AND S3 (s3rver on loopback) at once through FanoutDestination (one read).
 *   tsx bench/auto-sync.ts [--tree-mib 256] [--part-mib 5] [--queue 4]   (S3 defaults: the runner's)
 * Each run is its own child process (peak RSS is that run's maxRSS); s3rver runs in another process.
 * Prints MiB/s, runner CPU, peak RSS, the ratio, and checks the S3 object's sha256 against the archive's.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LocalDestination } from "../runner/src/destinations/local";
import { S3Destination } from "../runner/src/destinations/s3";
import { s3SpecSchema } from "../runner/src/destinations/url";
import { FanoutDestination } from "../runner/src/jobs/fanout-destination";
import { startS3Server } from "../tests/destinations/s3-server";
import { MiB, benchArgs, encryptedBackup, hostingTree, runBenchChild } from "./helpers";

const args = benchArgs();

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
  const spec = s3SpecSchema.parse({
    type: "s3",
    bucket: "bench",
    prefix: `autosync-${Date.now()}`,
    endpoint: args.get("endpoint"),
    pathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  });
  const s3 = new S3Destination({
    ...spec,
    ...(args.has("part-mib") ? { partSize: Number(args.get("part-mib")) * MiB } : {}),
    ...(args.has("queue") ? { queueSize: Number(args.get("queue")) } : {}),
  });
  const local = new LocalDestination(localDir);
  const fan =
    target === "local+s3" ? new FanoutDestination(local, [{ destinationId: "s3", dest: s3 }]) : undefined;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let copyOk: boolean | undefined;
  try {
    const r = await encryptedBackup(args.get("tree")!, fan ?? local, localDir);
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

const runChild = (target: string, extra: string[]) =>
  runBenchChild<Result>(
    [process.execPath, "--import", "tsx", fileURLToPath(import.meta.url), "--child", target, ...extra],
    target,
  );

async function main(): Promise<void> {
  const treeMib = args.get("tree-mib") ?? "256";
  const tree = hostingTree(treeMib);
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
