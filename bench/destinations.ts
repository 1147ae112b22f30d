/**
 * Destination throughput, local directory vs S3 (s3rver on loopback, bounded multipart, default 5 MiB x 4):
 *   tsx bench/destinations.ts [--mib 512]          raw stream of N MiB of incompressible data
 *   tsx bench/destinations.ts --tree-mib 1024      encrypted backup (panel key, zstd 3) of the hosting
 *                                                  tree from ../shared/bench/make-hosting-dataset.mjs
 *   [--part-mib 8] [--queue 4]                     S3 part size and parts in flight (default: the spec's)
 *   [--runs 3]                                     repeat; each run does both targets, in alternating
 *                                                  order, so load from other work on the machine hits both
 *   [--cpu-prof DIR]                               write a V8 CPU profile of each target run into DIR
 *   [--pin]                                        both targets' runner on CPU 0, s3rver alone on CPU 1:
 *                                                  the server's work no longer takes the runner's CPU,
 *                                                  as with S3 on another machine (needs 2+ CPUs, taskset)
 * Each target runs in its own child process, so the printed peak RSS (the child's maxRSS) is that
 * target's alone; s3rver runs in yet another process, whose CPU time during each run is read from
 * /proc. Prints MiB/s, runner CPU, s3rver CPU, peak RSS, the ratio per run and the medians.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { LocalDestination } from "../runner/src/destinations/local";
import { S3Destination } from "../runner/src/destinations/s3";
import type { Destination } from "../runner/src/destinations/types";
import { parseDestinationUrl, type S3Spec } from "../runner/src/destinations/url";
import { S3RVER_CREDENTIALS, startS3Server } from "../tests/destinations/s3-server";
import { MiB, benchArgs, encryptedBackup, hostingTree, runBenchChild } from "./helpers";

const args = benchArgs();

interface Result {
  target: string;
  secs: number;
  bytesIn: number;
  bytesOut: number;
  cpuSecs: number;
  maxRssMiB: number;
  /** process.memoryUsage() at the highest RSS sampled (every 100 ms), MiB: where the peak is held. */
  atPeak: { heap: number; external: number; arrayBuffers: number };
}

/** 1 MiB chunks cut from a random 16 MiB pool with a per-chunk salt: incompressible, cheap to make. */
function* data(total: number): Generator<Buffer> {
  const pool = randomBytes(16 * MiB);
  for (let i = 0; i < total / MiB; i++) {
    const off = (i * 7919 * 4096) % (15 * MiB);
    const chunk = Buffer.from(pool.subarray(off, off + MiB));
    chunk.writeUInt32LE(i, 0);
    yield chunk;
  }
}

async function child(target: string): Promise<void> {
  let dest: Destination;
  let localDir: string | undefined;
  if (target === "local") {
    localDir = await mkdtemp(join(tmpdir(), "cairn-bench-local-"));
    dest = new LocalDestination(localDir);
  } else {
    const spec = parseDestinationUrl("s3://bench/runs", {
      s3Endpoint: args.get("endpoint"),
      s3PathStyle: true,
      s3Credentials: S3RVER_CREDENTIALS,
    }) as S3Spec;
    dest = new S3Destination({
      ...spec,
      ...(args.has("part-mib") ? { partSize: Number(args.get("part-mib")) * MiB } : {}),
      ...(args.has("queue") ? { queueSize: Number(args.get("queue")) } : {}),
    });
  }
  const atPeak = { rss: 0, heap: 0, external: 0, arrayBuffers: 0 };
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    if (m.rss > atPeak.rss)
      Object.assign(atPeak, {
        rss: m.rss,
        heap: m.heapUsed / MiB,
        external: m.external / MiB,
        arrayBuffers: m.arrayBuffers / MiB,
      });
  }, 100);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let bytesIn: number;
  let bytesOut: number;
  try {
    const tree = args.get("tree");
    if (tree) {
      const r = await encryptedBackup(tree, dest, localDir ?? "/nonexistent");
      bytesIn = r.bytesIn;
      bytesOut = r.size;
    } else {
      const total = Number(args.get("mib") ?? 512) * MiB;
      const w = await dest.createWriter(`bench-${Date.now()}.bin`, { sizeHint: total });
      try {
        await pipeline(Readable.from(data(total), { objectMode: false, highWaterMark: MiB }), w.stream);
        bytesOut = (await w.commit()).size;
      } catch (err) {
        await w.abort(err);
        throw err;
      }
      bytesIn = total;
    }
  } finally {
    await dest.close();
    if (localDir) await rm(localDir, { recursive: true, force: true });
  }
  clearInterval(sampler);
  const cpu = process.cpuUsage(cpu0);
  const out: Result = {
    target,
    secs: (performance.now() - t0) / 1000,
    bytesIn,
    bytesOut,
    cpuSecs: (cpu.user + cpu.system) / 1e6,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    atPeak: { heap: atPeak.heap, external: atPeak.external, arrayBuffers: atPeak.arrayBuffers },
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function runChild(target: string, extra: string[]): Promise<Result> {
  const prof = args.get("cpu-prof");
  const nodeArgs = prof
    ? ["--cpu-prof", "--cpu-prof-dir", prof, "--cpu-prof-name", `${target}-${Date.now()}.cpuprofile`]
    : [];
  const cmd = [process.execPath, ...nodeArgs, "--import", "tsx", fileURLToPath(import.meta.url)];
  if (args.has("pin")) cmd.unshift("taskset", "-c", "0");
  return runBenchChild<Result>([...cmd, "--child", target, ...extra], target);
}

async function main(): Promise<void> {
  const extra: string[] = [];
  let label: string;
  const treeMib = args.get("tree-mib");
  if (treeMib) {
    extra.push("--tree", hostingTree(treeMib));
    label = `encrypted backup of the ${treeMib} MiB hosting tree`;
  } else {
    const mib = args.get("mib") ?? "512";
    extra.push("--mib", mib);
    label = `raw stream of ${mib} MiB`;
  }
  const s3 = await startS3Server(["bench"]);
  if (args.has("pin")) {
    // -a: every thread of the server (libuv pool included).
    const pinned = spawnSync("taskset", ["-a", "-p", "-c", "1", String(s3.pid)], { encoding: "utf8" });
    if (pinned.status !== 0) throw new Error(`taskset failed: ${pinned.stderr}`);
  }
  const runs = Number(args.get("runs") ?? 1);
  const tuning = ["part-mib", "queue"].flatMap((k) => (args.has(k) ? [`--${k}`, args.get(k) as string] : []));
  const defaults = parseDestinationUrl("s3://bench/runs", { s3Credentials: S3RVER_CREDENTIALS }) as S3Spec;
  const s3Label = `S3 (s3rver, ${args.get("part-mib") ?? defaults.partSize / MiB} MiB x ${args.get("queue") ?? defaults.queueSize})`;
  const byTarget: Record<string, Result[]> = { local: [], s3: [] };
  const serverCpu: number[] = [];
  const ratios: number[] = [];
  try {
    console.log(`${label} (each target in its own process; s3rver in another), ${runs} run(s)`);
    if (args.has("pin")) console.log("pinned: the runner of both targets on CPU 0, s3rver alone on CPU 1");
    for (let run = 1; run <= runs; run++) {
      // Alternate the order so a slow phase of other work on the machine does not always hit one target.
      const order = run % 2 === 1 ? ["local", "s3"] : ["s3", "local"];
      const got: Record<string, Result> = {};
      for (const target of order) {
        const cpu0 = processCpuSecs(s3.pid);
        const r = await runChild(target, [...extra, ...tuning, "--endpoint", s3.endpoint]);
        const srv = processCpuSecs(s3.pid) - cpu0;
        got[target] = r;
        byTarget[target]!.push(r);
        if (target === "s3") serverCpu.push(srv);
        console.log(
          `run ${run} ${(target === "local" ? "local directory" : s3Label).padEnd(24)} in ${(r.bytesIn / MiB).toFixed(0)} MiB, out ${(r.bytesOut / MiB).toFixed(0)} MiB, ${r.secs.toFixed(2)} s = ${(r.bytesIn / MiB / r.secs).toFixed(1)} MiB/s in, runner CPU ${r.cpuSecs.toFixed(1)} s, s3rver CPU ${srv.toFixed(1)} s, peak RSS ${r.maxRssMiB.toFixed(0)} MiB (then JS heap ${r.atPeak.heap.toFixed(0)}, external ${r.atPeak.external.toFixed(0)} MiB)`,
        );
      }
      const ratio = got.local!.secs / got.s3!.secs;
      ratios.push(ratio);
      console.log(`run ${run} throughput ratio S3/local: ${ratio.toFixed(2)}x`);
    }
    if (runs > 1) {
      const line = (name: string, rs: Result[], srv?: number[]): string =>
        `median ${name.padEnd(24)} ${median(rs.map((r) => r.bytesIn / MiB / r.secs)).toFixed(1)} MiB/s in, runner CPU ${median(rs.map((r) => r.cpuSecs)).toFixed(1)} s${srv ? `, s3rver CPU ${median(srv).toFixed(1)} s` : ""}, peak RSS max ${Math.max(...rs.map((r) => r.maxRssMiB)).toFixed(0)} MiB`;
      console.log(line("local directory", byTarget.local!));
      console.log(line(s3Label, byTarget.s3!, serverCpu));
      console.log(
        `median throughput ratio S3/local: ${median(ratios).toFixed(2)}x (runs: ${ratios.map((x) => x.toFixed(2)).join(", ")})`,
      );
    }
  } finally {
    await s3.close();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** User + system CPU seconds of a process so far (Linux /proc; fields 14 and 15, in clock ticks of 1/100 s). */
function processCpuSecs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

if (args.has("child")) await child(args.get("child") as string);
else await main();
