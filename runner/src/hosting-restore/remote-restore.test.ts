/**
 * Hosting restore from a remote copy through the job executors, after the local archive is gone (the
 * server's disk died): real PostgreSQL + MariaDB, a generated hosting tree, s3rver. A backup job writes
 * a password-encrypted archive of four domains, a sync job copies it to S3, the local files are deleted;
 * a restore job brings one domain's web files and databases back from S3, reading only that domain's
 * frames. A tampered copy fails CORRUPT with the live tree and databases untouched.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobClaims, JobSecrets, RemoteJobDestination } from "../../../shared/protocol/job-claims";
import { BackupJobResult } from "../../../shared/protocol/runner-messages";
import { openArchive } from "../archive";
import { manifestFileName } from "../archive/manifest";
import { frameTarOffsets } from "../archive/reader";
import type { RunnerConfig } from "../config";
import { makeRunnerConfig, makeSigningKey } from "../daemon/test-fixtures";
import { backupHandler } from "../jobs/backup";
import { loadCreateBackup, loadRestoreArchive } from "../jobs/engine";
import { restoreHandler } from "../jobs/restore";
import { s3rverDestination } from "../jobs/test-helpers";
import { syncHandler } from "../jobs/sync";
import type { JobContext } from "../jobs/types";
import { memoryLogger } from "../util/log";
import { startS3Server, type TestS3Server } from "../../../tests/destinations/s3-server";
import { dropMyDatabases, dropPgDatabases, my, pg, treeDigest } from "../../../tests/hosting/helpers";

const tag = `cairn_r${randomBytes(3).toString("hex")}`;
const PG_DB = `${tag}_site0`;
const MY_DB = `${tag}_site0m`;
const DOMAIN = "site0.example.com";
const PASSWORD = "Remote-Restore-9!pw";
const BINDING = { backupId: "bk_remote1", tenantId: "ten_test1", chainRootId: "bk_remote1", parentId: null };

let s3: TestS3Server;
let config: RunnerConfig;
let work: string;
let runnerDir: string;
let hostRoot: string;
let archive: { fileName: string; size: number; sha256: string };

const web0 = () => path.join(hostRoot, "home/user0/domains", DOMAIN, "public_html");
const pgSum = () =>
  pg("SELECT count(*) || ':' || md5(string_agg(id || '/' || v, ',' ORDER BY id)) FROM t", PG_DB);
const mySum = () =>
  my("SELECT CONCAT(COUNT(*), ':', MD5(GROUP_CONCAT(id, '/', v ORDER BY id))) FROM t", MY_DB);

const remote = (): RemoteJobDestination => ({
  kind: "remote",
  destinationId: "dst_s3",
  destination: {
    kind: "s3",
    config: { bucket: "offsite", prefix: "host1", endpoint: s3.endpoint, pathStyle: true },
  },
});
const secrets = (): JobSecrets => ({
  password: PASSWORD,
  destinations: { dst_s3: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } },
});
const s3dest = () =>
  s3rverDestination(s3, { bucket: "offsite", prefix: "host1", partSize: 5 * 1024 * 1024, queueSize: 2 });

let seq = 0;
const claimsOf = (job: JobClaims["job"]): JobClaims => ({
  iss: "cairn-control-plane",
  aud: config.runnerId,
  sub: config.tenantId,
  jti: `job_remote${++seq}`,
  iat: 0,
  exp: 0,
  job,
});
const ctxFor = (claims: JobClaims, progress: unknown[] = []): JobContext => ({
  jobId: claims.jti,
  claims,
  secrets: secrets(),
  config,
  signal: new AbortController().signal,
  progress: (p) => progress.push(p),
  log: memoryLogger(),
});

const restoreJob = (conflict: "skip" | "overwrite") =>
  claimsOf({
    type: "restore",
    params: {
      binding: BINDING,
      fileName: archive.fileName,
      destination: remote(),
      encryption: { mode: "password" },
      target: hostRoot,
      conflict,
      hosting: { domains: [DOMAIN], components: ["web", "db"], safetyBackup: true },
    },
  });

beforeAll(async () => {
  s3 = await startS3Server(["offsite"]);
  work = await mkdtemp(path.join(tmpdir(), "cairn-remote-restore-"));
  hostRoot = path.join(work, "host");
  execFileSync("node", [
    "/work/shared/bench/make-hosting-dataset.mjs",
    "--out",
    hostRoot,
    "--mib",
    "16",
    "--domains",
    "4",
  ]);
  pg(`CREATE DATABASE ${PG_DB}`);
  pg(
    "CREATE TABLE t (id int primary key, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 3000) g;",
    PG_DB,
  );
  my(`CREATE DATABASE ${MY_DB}`);
  my(
    "CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_2000;",
    MY_DB,
  );
  const hostConfig = path.join(work, "host.json");
  await writeFile(
    hostConfig,
    JSON.stringify({
      databaseServers: [
        { name: "pg", engine: "postgres", host: "127.0.0.1", port: 5432, user: "postgres" },
        { name: "maria", engine: "mysql", host: "127.0.0.1", port: 3306, user: "root" },
      ],
      // Only this test's databases: the servers are shared with other tests.
      databaseNaming: [{ pattern: `^${tag}_site(\\d)m?$`, domain: "site$1.example.com" }],
    }),
  );
  const made = await makeRunnerConfig(await makeSigningKey(), {
    allowedRoots: [work],
    hosting: { root: hostRoot, configPath: hostConfig },
  });
  config = made.config;
  runnerDir = made.dir;

  const backup = claimsOf({
    type: "backup",
    params: {
      binding: BINDING,
      name: "host",
      kind: "full",
      compressionLevel: 3,
      destination: { kind: "local" },
      encryption: { mode: "password" },
      hosting: { domains: "all", components: ["web", "db"] },
    },
  });
  const h = backupHandler(loadCreateBackup);
  await h.validate!(backup, secrets(), config);
  const out = await h.run(ctxFor(backup));
  const r = BackupJobResult.parse(out.result);
  expect(r.status, JSON.stringify(out)).toBe("complete");
  archive = { fileName: r.fileName, size: r.size, sha256: r.sha256 };

  const sync = claimsOf({
    type: "sync",
    params: { binding: BINDING, ...archive, source: { kind: "local" }, target: remote() },
  });
  const synced = await syncHandler().run(ctxFor(sync));
  expect(synced.result).toMatchObject({ status: "completed", sha256: archive.sha256 });
}, 120_000);

afterAll(async () => {
  await s3?.close();
  dropPgDatabases(tag);
  dropMyDatabases(tag);
  for (const d of [work, runnerDir]) if (d) await rm(d, { recursive: true, force: true });
});

describe("hosting restore from a remote copy (job path, s3rver)", () => {
  it("brings one domain's web files and databases back from S3 after the local archive is gone", async () => {
    const webBefore = treeDigest(web0());
    const site1Before = treeDigest(path.join(hostRoot, "home/user1/domains/site1.example.com/public_html"));
    const [pgBefore, myBefore] = [pgSum(), mySum()];
    expect(pgBefore).toMatch(/^3000:/);
    expect(myBefore).toMatch(/^2000:/);

    // The disk died: local archive and manifest gone, the domain's files and databases lost.
    await rm(path.join(config.backupDir, archive.fileName));
    await rm(path.join(config.backupDir, manifestFileName(archive.fileName)));
    await rm(web0(), { recursive: true });
    pg(`DROP DATABASE ${PG_DB} WITH (FORCE)`);
    my(`DROP DATABASE ${MY_DB}`);

    const claims = restoreJob("skip");
    const h = restoreHandler(loadRestoreArchive);
    await h.validate!(claims, secrets(), config);
    const progress: { phase?: string }[] = [];
    const out = await h.run(ctxFor(claims, progress));
    expect(out.result).toMatchObject({ status: "completed", target: "in place" });

    expect(treeDigest(web0())).toBe(webBefore);
    expect(pgSum()).toBe(pgBefore);
    expect(mySum()).toBe(myBefore);
    // The other domain was neither read back nor touched.
    expect(treeDigest(path.join(hostRoot, "home/user1/domains/site1.example.com/public_html"))).toBe(
      site1Before,
    );
    // Ranged reads: only the frames of site0's web + db came over the network, not the whole archive.
    const rem = (out.result as { remote: { bytesFetched: number; archiveBytes: number } }).remote;
    expect(rem.archiveBytes).toBe(archive.size);
    expect(rem.bytesFetched).toBeGreaterThan(0);
    expect(rem.bytesFetched).toBeLessThan(archive.size / 2);
    expect(progress.map((p) => p.phase)).toContain("restoring databases");
    // The spool is gone once the job ends.
    expect(existsSync(path.join(config.backupDir, "restore-spool", claims.jti))).toBe(false);
  });

  it("a tampered remote copy fails CORRUPT before anything is replaced: live files and databases untouched", async () => {
    // The frame to damage: one with site0 web files but none of the records read up front (domain meta,
    // dump.json), so it is the full check that must catch it; the edited live file sits in an earlier
    // frame, so a restore that wrote as it read would already have replaced it.
    const dest = s3dest();
    const h0 = await openArchive({
      source: dest,
      fileName: archive.fileName,
      key: { mode: "password", password: PASSWORD },
    });
    const offs = frameTarOffsets(h0.manifest);
    const framesOf = (e: { o: number; e: number }) => {
      const out: number[] = [];
      for (let i = 1; i < h0.manifest.frames.length; i++)
        if (offs[i]! < e.e && e.o < offs[i + 1]!) out.push(i);
      return out;
    };
    const mine = (await h0.entries.all()).filter((e) => e.d === DOMAIN);
    const upFront = new Set(
      mine.filter((e) => e.c === "meta" || e.p.endsWith("/dump.json")).flatMap((e) => framesOf(e)),
    );
    const web = mine.filter((e) => e.t === "file" && e.c === "web" && e.s > 0);
    const frame = Math.max(...web.flatMap((e) => framesOf(e)).filter((i) => !upFront.has(i)));
    const early = web.find((e) => Math.max(...framesOf(e)) < frame)!;
    const victim = path.join(web0(), early.p.slice(`${DOMAIN}/web/`.length));
    expect(existsSync(victim)).toBe(true);

    // Live state that an overwrite restore would replace.
    await writeFile(victim, "edited after the backup\n");
    pg("INSERT INTO t VALUES (999999, 'live row')", PG_DB);
    my("INSERT INTO t VALUES (999999, 'live row')", MY_DB);
    const webLive = treeDigest(web0());
    const [pgLive, myLive] = [pgSum(), mySum()];

    const at = h0.frameOffsets[frame]! + Math.floor(h0.manifest.frames[frame]!.c / 2);
    const chunks: Buffer[] = [];
    for await (const c of await dest.createReadStream(archive.fileName)) chunks.push(c as Buffer);
    const bytes = Buffer.concat(chunks);
    bytes[at] = bytes[at]! ^ 0x5a;
    const w = await dest.createWriter(archive.fileName);
    w.stream.end(bytes);
    await w.commit();
    await dest.close();

    const claims = restoreJob("overwrite");
    const h = restoreHandler(loadRestoreArchive);
    await h.validate!(claims, secrets(), config);
    const err = await h.run(ctxFor(claims)).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(err?.code).toBe("CORRUPT");
    expect(err?.message).toMatch(/archive check failed, nothing was restored/);

    expect(await readFile(victim, "utf8")).toBe("edited after the backup\n");
    expect(treeDigest(web0())).toBe(webLive);
    expect(pgSum()).toBe(pgLive);
    expect(mySum()).toBe(myLive);
    // Nothing was about to be replaced, so no safety copy was taken either; the spool is removed.
    expect(existsSync(path.join(config.backupDir, "pre-restore"))).toBe(false);
    expect(existsSync(path.join(config.backupDir, "restore-spool", claims.jti))).toBe(false);
  });
});
