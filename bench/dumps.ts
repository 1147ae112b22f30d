/**
 * Dump throughput: a database dumped through the hosting source into a real archive
 * (tar -> zstd frames, createBackup) versus the dump tool writing to a file alone, in the same run.
 *   npx tsx bench/dumps.ts [--mib 64] [--engines postgres,mysql] [--level 3] [--keep]
 * Creates `cairn_bench_<engine>` databases of about --mib MiB of table data on the local servers
 * (127.0.0.1:5432 trust, 127.0.0.1:3306 root) and drops them afterwards unless --keep.
 */
import { spawn } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { createBackup } from "../runner/src/archive";
import { parseHostConfig, type DatabaseServerConfig } from "../runner/src/inventory";
import { mysqlEntries } from "../runner/src/sources/mysql";
import { postgresEntries } from "../runner/src/sources/postgres";
import { my, pg } from "../tests/hosting/helpers";

const { values } = parseArgs({
  options: {
    mib: { type: "string", default: "64" },
    engines: { type: "string", default: "postgres,mysql" },
    level: { type: "string", default: "3" },
    keep: { type: "boolean" },
  },
});
const mib = Number(values.mib);
const level = Number(values.level);
const ROW = 512;
const rows = Math.ceil((mib * 1024 * 1024) / ROW);
const work = mkdtempSync(join(tmpdir(), "cairn-bench-dumps-"));
const cfg = parseHostConfig({
  databaseServers: [
    { name: "pg", engine: "postgres", host: "127.0.0.1", port: 5432, user: "postgres" },
    { name: "maria", engine: "mysql", host: "127.0.0.1", port: 3306, user: "root" },
  ],
});
const server = (e: string) => cfg.databaseServers.find((s) => s.engine === e)!;
const DB = (e: string) => `cairn_bench_${e}`;

function seed(engine: string): void {
  const db = DB(engine);
  // Rows mix a compressible and an incompressible-ish part, like real content tables.
  if (engine === "postgres") {
    pg(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    pg(`CREATE DATABASE ${db}`);
    pg(
      `CREATE TABLE posts (id bigint primary key, body text); INSERT INTO posts SELECT g, repeat(md5(g::text), 8) || md5(random()::text) || repeat('lorem ipsum ', 18) FROM generate_series(1, ${rows}) g;`,
      db,
    );
  } else {
    my(`DROP DATABASE IF EXISTS ${db}; CREATE DATABASE ${db}`);
    my(
      `CREATE TABLE posts (id BIGINT PRIMARY KEY, body TEXT) ENGINE=InnoDB; INSERT INTO posts SELECT seq, CONCAT(REPEAT(MD5(seq), 8), MD5(RAND()), REPEAT('lorem ipsum ', 18)) FROM seq_1_to_${rows};`,
      db,
    );
  }
}

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);

async function alone(engine: string, pgZ?: number): Promise<{ ms: number; bytes: number }> {
  const file = join(work, `${engine}.dump`);
  const t = performance.now();
  const z = pgZ === undefined ? [] : [`-Z${pgZ}`];
  const args =
    engine === "postgres"
      ? ["-h", "127.0.0.1", "-U", "postgres", "-Fc", ...z, "-d", DB(engine)]
      : [
          "-h",
          "127.0.0.1",
          "-uroot",
          "--single-transaction",
          "--routines",
          "--triggers",
          "--events",
          "--hex-blob",
          DB(engine),
        ];
  const child = spawn(engine === "postgres" ? "pg_dump" : "mariadb-dump", args, {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exit = new Promise<number | null>((r) => child.on("close", r));
  await pipeline(child.stdout, createWriteStream(file));
  if ((await exit) !== 0) throw new Error(`${engine} dump failed`);
  const ms = performance.now() - t;
  const bytes = statSync(file).size;
  rmSync(file);
  return { ms, bytes };
}

/** The source alone, entries consumed and dropped: what the part cutting costs without the archive. */
async function sourceOnly(engine: string): Promise<{ ms: number; bytes: number; cpuS: number }> {
  const s: DatabaseServerConfig = server(engine);
  const entries =
    engine === "postgres"
      ? postgresEntries(s, "bench.example.com", DB(engine))
      : mysqlEntries(s, "bench.example.com", DB(engine));
  const t = performance.now();
  const cpu = process.cpuUsage();
  let bytes = 0;
  for await (const e of entries) if (e.name.includes("dump.part-")) bytes += e.size;
  const c = process.cpuUsage(cpu);
  return { ms: performance.now() - t, bytes, cpuS: (c.user + c.system) / 1e6 };
}

async function throughArchive(engine: string): Promise<{ ms: number; bytes: number; archive: number }> {
  const s: DatabaseServerConfig = server(engine);
  const entries =
    engine === "postgres"
      ? postgresEntries(s, "bench.example.com", DB(engine))
      : mysqlEntries(s, "bench.example.com", DB(engine));
  peakRss = process.memoryUsage().rss;
  const t = performance.now();
  const r = await createBackup({
    entries,
    outDir: join(work, "out"),
    name: `bench-${engine}`,
    kind: "full",
    level,
    encryption: { mode: "none" },
    binding: { backupId: "bench", tenantId: "bench", chainRootId: "bench", parentId: null },
  });
  const ms = performance.now() - t;
  rmSync(r.path);
  return { ms, bytes: r.bytesIn, archive: r.size };
}

const MiB = 1024 * 1024;
const rate = (bytes: number, ms: number) => `${(bytes / MiB / (ms / 1000)).toFixed(1)} MiB/s`;
try {
  console.log(`dump bench: ~${mib} MiB of table data per engine, ${rows} rows, zstd level ${level}`);
  for (const engine of values.engines!.split(",")) {
    const t = performance.now();
    seed(engine);
    console.log(`${engine}: seeded in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    await alone(engine); // warm the cache so every measurement reads the same pages
    const base1 = await alone(engine);
    const src = await sourceOnly(engine);
    const arc = await throughArchive(engine);
    const base2 = await alone(engine);
    const base = base1.ms <= base2.ms ? base1 : base2;
    const tool = engine === "postgres" ? "pg_dump -Fc > file" : "mariadb-dump > file";
    const load = (await import("node:os")).loadavg()[0]!.toFixed(1);
    console.log(
      `  ${tool} (alone, best of 2): ${(base.ms / 1000).toFixed(2)} s, ${(base.bytes / MiB).toFixed(1)} MiB dump, ${rate(mib * MiB, base.ms)} of table data`,
    );
    if (engine === "postgres") {
      const z0 = await alone(engine, 0);
      console.log(
        `  pg_dump -Fc -Z0 > file: ${(z0.ms / 1000).toFixed(2)} s, ${(z0.bytes / MiB).toFixed(1)} MiB dump, ${rate(mib * MiB, z0.ms)}`,
      );
    }
    console.log(
      `  source only (parts dropped): ${(src.ms / 1000).toFixed(2)} s, ${(src.bytes / MiB).toFixed(1)} MiB dump, ${rate(mib * MiB, src.ms)}, runner CPU ${src.cpuS.toFixed(2)} s`,
    );
    console.log(
      `  source -> archive (zstd ${level}): ${(arc.ms / 1000).toFixed(2)} s, ${(arc.bytes / MiB).toFixed(1)} MiB dump -> ${(arc.archive / MiB).toFixed(1)} MiB archive, ${rate(mib * MiB, arc.ms)}`,
    );
    console.log(
      `  ratio source->archive / ${tool}: ${(arc.ms / base.ms).toFixed(3)} (target <= 1.10); source only: ${(src.ms / base.ms).toFixed(3)}; peak RSS ${(peakRss / MiB).toFixed(0)} MiB; load avg ${load} on ${(await import("node:os")).cpus().length} cores`,
    );
  }
} finally {
  clearInterval(sampler);
  if (!values.keep) {
    pg(`DROP DATABASE IF EXISTS ${DB("postgres")} WITH (FORCE)`);
    my(`DROP DATABASE IF EXISTS ${DB("mysql")}`);
  }
  rmSync(work, { recursive: true, force: true });
}
