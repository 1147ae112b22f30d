/**
 * End to end, hosting restore from an off-site copy: the real Worker, a real `cairn-runner` with a hosting
 * root and config, real PostgreSQL and a real s3rver. A backup of one domain (web + db) is auto-synced to S3;
 * the runner's local archive and the domain's files and database are then lost, and the domain is restored
 * through the API from the S3 copy (`destinationId`), row for row and byte for byte.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropPgDatabases, pg, treeDigest } from "../hosting/helpers";
import { startS3Server, type TestS3Server } from "../destinations/s3-server";
import {
  type Cluster,
  type RunnerHandle,
  startCluster,
  startOnlineRunner,
  waitFor,
} from "../support/cluster";

const tag = `cairn_x${randomBytes(3).toString("hex")}`;
const PG_DB = `${tag}_site0`;
const PASSWORD = "hosting offsite Password-31!";
const TERMINAL = ["SUCCEEDED", "FAILED", "INTERRUPTED", "CANCELLED"];

let cluster: Cluster;
let s3: TestS3Server;
let runner: RunnerHandle;
let root: string;
let runnerId: string;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
const api = <T = Json>(method: string, path: string, body?: unknown) =>
  cluster.api.request<T>(method, path, body);
const pgSum = () =>
  pg("SELECT count(*) || ':' || md5(string_agg(id || '/' || body, ',' ORDER BY id)) FROM posts", PG_DB);
const web0 = () => join(root, "home/user0/domains/site0.example.com/public_html");

async function finished(jobId: string): Promise<Json> {
  return waitFor(
    `job ${jobId}`,
    async () => {
      const j: Json = await api("GET", `/api/v1/jobs/${jobId}`);
      return TERMINAL.includes(j.state) ? j : undefined;
    },
    60_000,
    100,
  );
}

beforeAll(async () => {
  [cluster, s3] = await Promise.all([startCluster(), startS3Server(["offsite"])]);
  root = join(cluster.dir, "host");
  execFileSync("node", [
    "/work/shared/bench/make-hosting-dataset.mjs",
    "--out",
    root,
    "--mib",
    "4",
    "--domains",
    "2",
  ]);
  pg(`CREATE DATABASE ${PG_DB}`);
  pg(
    "CREATE TABLE posts (id int primary key, body text); INSERT INTO posts SELECT g, repeat(md5(g::text), 10) FROM generate_series(1, 1500) g;",
    PG_DB,
  );
  const hostConfig = join(cluster.dir, "host.json");
  writeFileSync(
    hostConfig,
    JSON.stringify({
      databaseServers: [{ name: "pg", engine: "postgres", host: "127.0.0.1", port: 5432, user: "postgres" }],
      // Only this test's database: the server is shared with other tests.
      databaseNaming: [{ pattern: `^${tag}_site(\\d+)$`, domain: "site$1.example.com" }],
    }),
  );
  ({ runner, runnerId } = await startOnlineRunner(
    cluster,
    "hosting-offsite",
    [],
    ["--hosting-root", root, "--hosting-config", hostConfig, "--allowed-root", root],
  ));
  await waitFor("domains reported", async () => {
    const list = await api<Json[]>("GET", `/api/v1/runners/${runnerId}/domains`);
    return list.length === 2 ? list : undefined;
  });
}, 120_000);

afterAll(async () => {
  await runner?.stop();
  dropPgDatabases(tag);
  await Promise.all([cluster?.close(), s3?.close()]);
});

describe("hosting restore from a remote copy through the API", () => {
  it("restores a domain's web files and database from S3 after the local archive is gone", async () => {
    const dest = await api("POST", "/api/v1/destinations", {
      name: "offsite",
      kind: "s3",
      config: { bucket: "offsite", prefix: "host", endpoint: s3.endpoint, pathStyle: true },
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    });
    const pgBefore = pgSum();
    const webBefore = treeDigest(web0());
    const created = await api("POST", "/api/v1/backups", {
      runnerId,
      name: "hosting",
      domains: ["site0.example.com", "site1.example.com"],
      components: ["web", "db"],
      encryption: { mode: "password", password: PASSWORD },
      destinations: [dest.id],
    });
    const bj = await finished(created.job.id);
    expect(bj.state, JSON.stringify(bj)).toBe("SUCCEEDED");
    const b = await api("GET", `/api/v1/backups/${created.backup.id}`);
    expect(b.copies).toHaveLength(1);
    expect(b.copies[0]).toMatchObject({ destinationId: dest.id, status: "completed" });

    // The server's disk died: local archive, the domain's files and its database are gone.
    rmSync(join(runner.backupDir, b.fileName));
    rmSync(join(runner.backupDir, `${b.fileName}.manifest`), { force: true });
    rmSync(web0(), { recursive: true });
    pg(`DROP DATABASE ${PG_DB} WITH (FORCE)`);

    const rr = await api("POST", `/api/v1/backups/${b.id}/restore`, {
      destinationId: dest.id,
      password: PASSWORD,
      target: root,
      domains: ["site0.example.com"],
      components: ["web", "db"],
      conflict: "skip",
    });
    const rj = await finished(rr.job.id);
    expect(rj.state, JSON.stringify(rj)).toBe("SUCCEEDED");
    expect(rj.result).toMatchObject({ status: "completed", target: "in place" });
    expect(rj.result.remote.bytesFetched).toBeGreaterThan(0);
    expect(rj.result.remote.bytesFetched).toBeLessThan(b.size);
    expect(treeDigest(web0())).toBe(webBefore);
    expect(pgSum()).toBe(pgBefore);
  }, 90_000);
});
