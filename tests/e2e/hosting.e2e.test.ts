/**
 * End to end, hosting: the real Worker, a real `cairn-runner` enrolled with --hosting-root/--hosting-config,
 * a generated hosting tree and real PostgreSQL + MariaDB databases mapped to domains. Inventory reaches the
 * domains API; a backup by domain + component goes through the API; after a database is dropped and a
 * domain's files deleted, one domain is restored through the API and comes back row for row and byte for byte,
 * with the restore phases reported in order.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RESTORE_PHASES } from "../../runner/src/hosting-restore/progress";
import { dropMyDatabases, dropPgDatabases, my, pg, treeDigest } from "../hosting/helpers";
import {
  type Cluster,
  type RunnerHandle,
  startCluster,
  startOnlineRunner,
  waitFor,
} from "../support/cluster";

const DATASET = "/work/shared/bench/make-hosting-dataset.mjs";
const tag = `cairn_e${randomBytes(3).toString("hex")}`;
const PG_DB = `${tag}_site0`;
const MY_DB = `${tag}_site1`;
const TERMINAL = ["SUCCEEDED", "FAILED", "INTERRUPTED", "CANCELLED"];

let cluster: Cluster;
let runner: RunnerHandle;
let root: string;
let runnerId: string;

const pgSum = () =>
  pg("SELECT count(*) || ':' || md5(string_agg(id || '/' || body, ',' ORDER BY id)) FROM posts", PG_DB);
const mySum = () =>
  my("SELECT CONCAT(COUNT(*), ':', MD5(GROUP_CONCAT(id, '/', body ORDER BY id))) FROM posts", MY_DB);
const web0 = () => join(root, "home/user0/domains/site0.example.com/public_html");

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

async function finished(jobId: string, onPoll?: (j: Json) => void): Promise<Json> {
  return waitFor(
    `job ${jobId}`,
    async () => {
      const j: Json = await cluster.api.getJob(jobId);
      onPoll?.(j);
      return TERMINAL.includes(j.state) ? j : undefined;
    },
    60_000,
    50,
  );
}

beforeAll(async () => {
  cluster = await startCluster();
  root = join(cluster.dir, "host");
  execFileSync("node", [DATASET, "--out", root, "--mib", "8"]);
  pg(`CREATE DATABASE ${PG_DB}`);
  pg(
    "CREATE TABLE posts (id int primary key, body text); INSERT INTO posts SELECT g, repeat(md5(g::text), 20) FROM generate_series(1, 2000) g;",
    PG_DB,
  );
  my(`CREATE DATABASE ${MY_DB}`);
  my(
    "CREATE TABLE posts (id INT PRIMARY KEY, body TEXT); INSERT INTO posts SELECT seq, REPEAT(MD5(seq), 20) FROM seq_1_to_1500;",
    MY_DB,
  );
  const hostConfig = join(cluster.dir, "host.json");
  writeFileSync(
    hostConfig,
    JSON.stringify({
      databaseServers: [
        { name: "pg", engine: "postgres", host: "127.0.0.1", port: 5432, user: "postgres" },
        { name: "maria", engine: "mysql", host: "127.0.0.1", port: 3306, user: "root" },
      ],
      // Only this test's databases: the servers are shared with other tests.
      databaseNaming: [{ pattern: `^${tag}_site(\\d+)$`, domain: "site$1.example.com" }],
    }),
  );
  mkdirSync(join(cluster.dir, "empty"), { recursive: true });
  ({ runner, runnerId } = await startOnlineRunner(
    cluster,
    "hosting-1",
    [],
    ["--hosting-root", root, "--hosting-config", hostConfig, "--allowed-root", root],
  ));
}, 120_000);

afterAll(async () => {
  await runner?.stop();
  dropPgDatabases(tag);
  dropMyDatabases(tag);
  await cluster?.close();
});

describe("hosting through the API and a real runner", () => {
  it("reports its inventory, backs up by domain and component, and restores one domain with phases", async () => {
    // Inventory: sent after welcome; the API lists the domains with their databases.
    const domains: Json[] = await waitFor("domains reported", async () => {
      const list = await cluster.api.request<Json[]>("GET", `/api/v1/runners/${runnerId}/domains`);
      return list.length === 8 ? list : undefined;
    });
    expect(domains.map((d) => d.domain)).toEqual(Array.from({ length: 8 }, (_, i) => `site${i}.example.com`));
    expect(domains[0]).toMatchObject({
      components: ["web", "db", "mail", "dns", "ssl"],
      databases: [{ engine: "postgres", name: PG_DB }],
    });
    expect(domains[1].databases).toEqual([{ engine: "mysql", name: MY_DB }]);

    // Unknown domain: refused up front, naming it.
    await expect(
      cluster.api.createBackup({
        runnerId,
        name: "hosting",
        domains: ["nope.example.com"],
        components: ["web"],
      }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringContaining("nope.example.com") });

    const pgBefore = pgSum();
    const myBefore = mySum();
    const webBefore = treeDigest(web0());
    const { backup, job } = await cluster.api.createBackup({
      runnerId,
      name: "hosting",
      domains: ["site0.example.com", "site1.example.com"],
      components: ["web", "db", "dns"],
    });
    const bj = await finished(job.id);
    expect(bj.state, JSON.stringify(bj)).toBe("SUCCEEDED");
    const b: Json = await cluster.api.getBackup(backup.id);
    expect(b.status, JSON.stringify(b)).toBe("completed");
    expect(bj.result.domains).toEqual(["site0.example.com", "site1.example.com"]);

    // Disaster: site0's database dropped and its web files deleted; site1's data changed.
    pg(`DROP DATABASE ${PG_DB} WITH (FORCE)`);
    rmSync(web0(), { recursive: true, force: true });
    my("DELETE FROM posts WHERE id > 1000", MY_DB);

    const rr = await cluster.api.request<Json>("POST", `/api/v1/backups/${backup.id}/restore`, {
      target: root,
      domains: ["site0.example.com"],
      components: ["web", "db"],
      conflict: "skip",
    });
    const seen: string[] = [];
    const rj = await finished(rr.job.id, (j) => {
      const ph = j.progress?.phase;
      if (ph && seen[seen.length - 1] !== ph) seen.push(ph);
    });
    expect(rj.state, JSON.stringify(rj)).toBe("SUCCEEDED");
    // The runner records every phase it entered; the API showed them live in the same order (a fast phase may be coalesced away).
    expect(rj.result.phases.map((p: Json) => p.phase)).toEqual([...RESTORE_PHASES]);
    expect(
      seen.every(
        (p, i) =>
          i === 0 || RESTORE_PHASES.indexOf(p as never) > RESTORE_PHASES.indexOf(seen[i - 1] as never),
      ),
    ).toBe(true);
    expect(rj.progress).toMatchObject({
      phase: "completed",
      percent: 100,
      domainsText: "1 of 1 domains",
    });

    expect(pgSum()).toBe(pgBefore);
    expect(existsSync(web0())).toBe(true);
    expect(treeDigest(web0())).toBe(webBefore);
    // Only the selected domain came back: site1 keeps its (changed) data.
    expect(mySum()).not.toBe(myBefore);
    expect(my("SELECT COUNT(*) FROM posts", MY_DB)).toBe("1000");
  }, 90_000);
});
