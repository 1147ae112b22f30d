/**
 * Destination throughput: stream N MiB of random-ish data to s3rver on loopback (the S3 destination's
 * bounded multipart: 8 MiB parts x 4 in flight) and to a local directory, and print MiB/s, the
 * ratio and the process's peak RSS for each. s3rver runs in its own process, so the RSS is the
 * runner side only. Usage: tsx bench/destinations.ts [--mib 512]
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { LocalDestination } from "../runner/src/destinations/local";
import { S3Destination } from "../runner/src/destinations/s3";
import type { Destination } from "../runner/src/destinations/types";
import { parseDestinationUrl, type S3Spec } from "../runner/src/destinations/url";
import { S3RVER_CREDENTIALS, startS3Server } from "../tests/destinations/s3-server";

const MiB = 1024 * 1024;
const argMib = process.argv.indexOf("--mib");
const totalMib = argMib > 0 ? Number(process.argv[argMib + 1]) : 512;

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

async function run(label: string, dest: Destination): Promise<{ mibs: number; peakRss: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const w = await dest.createWriter(`bench-${Date.now()}.bin`, { sizeHint: totalMib * MiB });
  try {
    await pipeline(Readable.from(data(totalMib * MiB), { objectMode: false, highWaterMark: MiB }), w.stream);
    const info = await w.commit();
    if (info.size !== totalMib * MiB) throw new Error(`${label}: stored ${info.size} bytes`);
  } catch (err) {
    await w.abort(err);
    throw err;
  } finally {
    clearInterval(timer);
  }
  const secs = (performance.now() - t0) / 1000;
  peak = Math.max(peak, process.memoryUsage().rss);
  const mibs = totalMib / secs;
  const cpu = process.cpuUsage(cpu0);
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  console.log(
    `${label.padEnd(28)} ${totalMib} MiB in ${secs.toFixed(2)} s = ${mibs.toFixed(1)} MiB/s, runner CPU ${cpuSecs.toFixed(1)} s, peak RSS ${(peak / MiB).toFixed(0)} MiB`,
  );
  return { mibs, peakRss: peak };
}

const localDir = await mkdtemp(join(tmpdir(), "cairn-bench-local-"));
const s3 = await startS3Server(["bench"]);
try {
  const spec = parseDestinationUrl("s3://bench/runs", {
    s3Endpoint: s3.endpoint,
    s3PathStyle: true,
    s3Credentials: S3RVER_CREDENTIALS,
  }) as S3Spec;
  const local = await run("local directory", new LocalDestination(localDir));
  const remote = await run("s3rver (8 MiB x 4 parts)", new S3Destination(spec));
  console.log(
    `ratio s3/local: ${(remote.mibs / local.mibs).toFixed(2)}x   peak RSS overall: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`,
  );
} finally {
  await s3.close();
  await rm(localDir, { recursive: true, force: true });
}
