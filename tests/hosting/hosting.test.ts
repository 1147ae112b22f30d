import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ArchiveEntry, BackupResult } from "../../runner/src/archive/types";
import {
  discoverInventory,
  parseHostConfig,
  type HostConfig,
  type Inventory,
} from "../../runner/src/inventory";
import { backupHosting, hostingEntries, type Selection } from "../../runner/src/sources";
import {
  restoreHosting,
  tarFileSource,
  writeTarFile,
  type RestoreProgress,
} from "../../runner/src/hosting-restore";
import { dropMyDatabases, dropPgDatabases, my, pg, treeDigest } from "./helpers";

const DATASET = "/work/shared/bench/make-hosting-dataset.mjs";
const tag = `cairn_t${randomBytes(3).toString("hex")}`;
const PG_DB = `${tag}_site0`;
const MY_DB = `${tag}_site1`;
let work: string;
let root: string;
let config: HostConfig;
let inventory: Inventory;
const ALL: Selection = { domains: "all", components: ["web", "db", "mail", "dns", "ssl"] };

const pgSum = (db: string) =>
  pg("SELECT count(*) || ':' || md5(string_agg(id || '/' || body, ',' ORDER BY id)) FROM posts", db);
const mySum = (db: string) =>
  my("SELECT CONCAT(COUNT(*), ':', MD5(GROUP_CONCAT(id, '/', body ORDER BY id))) FROM posts", db);

async function backupToTar(cfg: HostConfig, inv: Inventory, sel: Selection, file: string) {
  return backupHosting({
    inventory: inv,
    config: cfg,
    selection: sel,
    partSize: 64 * 1024, // small parts so the test dumps span several of them
    write: async (entries: AsyncIterable<ArchiveEntry>): Promise<BackupResult> => {
      const t = Date.now();
      const r = await writeTarFile(entries, file);
      return {
        path: file,
        fileName: file,
        size: statSync(file).size,
        sha256: "",
        fileCount: r.files,
        bytesIn: r.bytes,
        durationMs: Date.now() - t,
        warnings: [],
      };
    },
  });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "cairn-hosting-"));
  root = join(work, "host");
  execFileSync("node", [DATASET, "--out", root, "--mib", "8"]);
  pg(`CREATE DATABASE ${PG_DB}`);
  pg(
    "CREATE TABLE posts (id int primary key, body text); CREATE TABLE access_log (id int, line text);",
    PG_DB,
  );
  pg(
    "INSERT INTO posts SELECT g, repeat(md5(g::text), 40) FROM generate_series(1, 3000) g; INSERT INTO access_log SELECT g, 'noise' FROM generate_series(1, 500) g;",
    PG_DB,
  );
  my(`CREATE DATABASE ${MY_DB}`);
  my(
    "CREATE TABLE posts (id INT PRIMARY KEY, body TEXT); CREATE TABLE audit (n INT);" +
      "CREATE TRIGGER posts_ai AFTER INSERT ON posts FOR EACH ROW INSERT INTO audit VALUES (NEW.id);" +
      "INSERT INTO posts SELECT seq, REPEAT(MD5(seq), 40) FROM seq_1_to_3000;",
    MY_DB,
  );
  config = parseHostConfig({
    databaseServers: [
      {
        name: "pg",
        engine: "postgres",
        host: "127.0.0.1",
        port: 5432,
        user: "postgres",
        excludeTableData: ["access_log"],
      },
      { name: "maria", engine: "mysql", host: "127.0.0.1", port: 3306, user: "root" },
    ],
    databaseNaming: [{ pattern: `^${tag}_site(\\d+)$`, domain: "site$1.example.com" }],
  });
  inventory = await discoverInventory({ root, config });
});

afterAll(() => {
  dropPgDatabases(tag);
  dropMyDatabases(tag);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("hosting backup and restore with real PostgreSQL and MariaDB", () => {
  it("discovers domains from the layout and maps databases by naming rule", async () => {
    expect(inventory.domains.map((d) => d.domain)).toEqual(
      Array.from({ length: 8 }, (_, i) => `site${i}.example.com`),
    );
    const s0 = inventory.domains[0]!;
    expect(s0.webRoot).toBe(join(root, "home/user0/domains/site0.example.com/public_html"));
    expect(s0.mailDir).toBe(join(root, "mail/site0.example.com"));
    expect(s0.dnsZone).toBe(join(root, "dns/site0.example.com.zone"));
    expect(s0.databases).toEqual([{ engine: "postgres", name: PG_DB, server: "pg" }]);
    expect(inventory.domains[1]!.databases).toEqual([{ engine: "mysql", name: MY_DB, server: "maria" }]);
    expect(inventory.servers.every((s) => s.reachable)).toBe(true);
  });

  it("backs up everything, then restores all after data loss with equal checksums", async () => {
    const before = {
      pg: pgSum(PG_DB),
      my: mySum(MY_DB),
      web0: treeDigest(inventory.domains[0]!.webRoot!),
      ssl1: treeDigest(inventory.domains[1]!.sslDir!),
    };
    const archive = join(work, "all.tar");
    const res = await backupToTar(config, inventory, ALL, archive);
    expect(res.warnings).toEqual([]);
    expect(res.status).toBe("complete");

    // Data loss: a dropped database, changed rows, deleted and modified files.
    pg(`DROP DATABASE ${PG_DB} WITH (FORCE)`);
    my("DELETE FROM posts WHERE id > 100; UPDATE posts SET body = 'x' WHERE id = 1", MY_DB);
    rmSync(join(inventory.domains[0]!.webRoot!, "app"), { recursive: true });
    writeFileSync(join(inventory.domains[1]!.sslDir!, "key.pem"), "tampered");
    expect(mySum(MY_DB)).not.toBe(before.my);

    const events: RestoreProgress[] = [];
    const r = await restoreHosting({
      source: tarFileSource(archive),
      config,
      conflict: "overwrite",
      safetyDir: join(work, "safety"),
      onProgress: (e) => events.push(e),
    });
    expect(r.errors).toEqual([]);
    expect(r.status).toBe("completed");
    expect(pgSum(PG_DB)).toBe(before.pg);
    expect(mySum(MY_DB)).toBe(before.my);
    // Excluded table data: schema restored, rows not.
    expect(pg("SELECT count(*) FROM access_log", PG_DB)).toBe("0");
    expect(treeDigest(inventory.domains[0]!.webRoot!)).toBe(before.web0);
    expect(treeDigest(inventory.domains[1]!.sslDir!)).toBe(before.ssl1);
    expect(statSync(join(inventory.domains[1]!.sslDir!, "key.pem")).mode & 0o777).toBe(
      statSync(join(inventory.domains[0]!.sslDir!, "key.pem")).mode & 0o777,
    );

    // The overwritten MariaDB database and the replaced files are in the safety backup.
    expect(r.safetyBackup.some((f) => f.endsWith(`_mysql_${MY_DB}.sql`))).toBe(true);
    const safetyTar = r.safetyBackup.find((f) => f.endsWith(".tar"))!;
    const saved = await tarFileSource(safetyTar).list();
    expect(saved.map((e) => e.name)).toContain("files/site1.example.com/ssl/key.pem");

    // Phases in order, with domain counts and percent.
    const phases = [...new Set(events.map((e) => e.phase))];
    expect(phases).toEqual([
      "validating",
      "decrypting",
      "extracting files",
      "restoring databases",
      "restoring email",
      "restoring DNS",
      "restoring SSL",
      "verifying",
      "completed",
    ]);
    expect(events.some((e) => e.phase === "extracting files" && e.domainsText === "2 of 8 domains")).toBe(
      true,
    );
    expect(events.at(-1)).toMatchObject({ phase: "completed", percent: 100 });
  });

  it("restores one domain's one component into another root, nothing else", async () => {
    const archive = join(work, "all2.tar");
    expect((await backupToTar(config, inventory, ALL, archive)).status).toBe("complete");
    const target = join(work, "other-server");
    const r = await restoreHosting({
      source: tarFileSource(archive),
      config,
      domains: ["site5.example.com"],
      components: ["mail"],
      targetRoot: target,
    });
    expect(r.errors).toEqual([]);
    expect(treeDigest(join(target, "mail/site5.example.com"))).toBe(
      treeDigest(join(root, "mail/site5.example.com")),
    );
    expect(existsSync(join(target, "home"))).toBe(false);
    expect(existsSync(join(target, "mail/site4.example.com"))).toBe(false);
    expect(r.restored.map((x) => `${x.domain}:${x.component}`)).toEqual(["site5.example.com:mail"]);
  });

  it("renames a database on conflict and leaves the original untouched; skip leaves it alone", async () => {
    const archive = join(work, "db.tar");
    expect(
      (await backupToTar(config, inventory, { domains: ["site1.example.com"], components: ["db"] }, archive))
        .status,
    ).toBe("complete");
    const good = mySum(MY_DB);
    my("DELETE FROM posts WHERE id > 10", MY_DB);
    const changed = mySum(MY_DB);
    const skip = await restoreHosting({
      source: tarFileSource(archive),
      config,
      components: ["db"],
      conflict: "skip",
    });
    expect(skip.warnings.join()).toMatch(/skipped/);
    expect(mySum(MY_DB)).toBe(changed);
    const r = await restoreHosting({
      source: tarFileSource(archive),
      config,
      components: ["db"],
      conflict: "rename",
      now: () => new Date("2026-02-03T04:05:06Z"),
    });
    expect(r.errors).toEqual([]);
    expect(r.renamed).toEqual([{ engine: "mysql", from: MY_DB, to: `${MY_DB}_restored_20260203_040506` }]);
    expect(mySum(MY_DB)).toBe(changed);
    expect(mySum(`${MY_DB}_restored_20260203_040506`)).toBe(good);
    expect(
      my(
        `SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='${MY_DB}_restored_20260203_040506'`,
      ),
    ).toBe("1");
  });

  it("one database server down: the rest backs up and the result is partial with the reason", async () => {
    const srv = (await import("node:net")).createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const down = parseHostConfig({
      ...config,
      databaseServers: config.databaseServers.map((s) => (s.engine === "mysql" ? { ...s, port } : s)),
    });
    const archive = join(work, "partial.tar");
    const res = await backupToTar(
      down,
      inventory,
      { domains: ["site0.example.com", "site1.example.com"], components: ["web", "db", "dns"] },
      archive,
    );
    expect(res.status).toBe("partial");
    expect(res.failures).toHaveLength(1);
    expect(res.failures[0]).toMatchObject({
      domain: "site1.example.com",
      component: "db",
      item: `mysql/${MY_DB}`,
      code: "DB_UNREACHABLE",
    });
    expect(res.warnings).toHaveLength(1);
    expect(res.warnings[0]).toMatch(new RegExp(`site1.example.com db mysql/${MY_DB} failed`));
    const names = (await tarFileSource(archive).list()).map((e) => e.name);
    expect(names).toContain(`site0.example.com/db/postgres/${PG_DB}/dump.json`);
    expect(names).toContain("site1.example.com/dns/site1.example.com.zone");
    expect(names.some((n) => n.startsWith("site1.example.com/web/app/"))).toBe(true);
    expect(names.some((n) => n.includes(`/db/mysql/`))).toBe(false);
  });

  it("a dump that fails midway leaves no dump.json and is never restored", async () => {
    const cfg = parseHostConfig({
      ...config,
      domains: {
        "site2.example.com": { databases: [{ engine: "postgres", name: `${tag}_missing`, server: "pg" }] },
      },
    });
    const inv = await discoverInventory({ root, config: cfg });
    const { entries, report } = hostingEntries({
      inventory: inv,
      config: cfg,
      selection: { domains: ["site2.example.com"], components: ["db"] },
    });
    const names: string[] = [];
    for await (const e of entries) names.push(e.name);
    expect(report.failures[0]).toMatchObject({ component: "db", code: "DUMP_FAILED" });
    expect(report.failures[0]!.reason).toMatch(/does not exist/);
    expect(names.some((n) => n.endsWith("dump.json"))).toBe(false);
  });

  it("a dump carrying shell escapes is refused without executing anything", async () => {
    const marker1 = join(work, "pwned-bang");
    const marker2 = join(work, "pwned-system");
    const sql = Buffer.from(
      `/*M!999999\\- enable the sandbox mode */\nCREATE TABLE posts (id INT PRIMARY KEY, body TEXT);\nINSERT INTO posts VALUES (1,'a');\n\\! touch ${marker1}\nsystem touch ${marker2}\nINSERT INTO posts VALUES (2,'b');\n`,
    );
    const evilDb = `${tag}_evil`;
    const dir = `site3.example.com/db/mysql/${evilDb}`;
    const { createHash } = await import("node:crypto");
    const info = {
      engine: "mysql",
      database: evilDb,
      server: "maria",
      format: "mariadb-dump-sql",
      parts: 1,
      bytes: sql.length,
      sha256: createHash("sha256").update(sql).digest("hex"),
      partSize: 1 << 24,
      tool: "x",
      finishedAt: "",
    };
    const mk = (name: string, data: Buffer): ArchiveEntry => ({
      name,
      type: "file",
      size: data.length,
      mode: 0o600,
      uid: 0,
      gid: 0,
      mtime: new Date(),
      body: { kind: "buffer", data },
    });
    const archive = join(work, "evil.tar");
    await writeTarFile(
      (async function* () {
        yield mk(
          "site3.example.com/domain.json",
          Buffer.from(
            JSON.stringify({
              domain: "site3.example.com",
              mailConfig: [],
              databases: [],
              components: ["db"],
            }),
          ),
        );
        yield mk(`${dir}/dump.part-000001`, sql);
        yield mk(`${dir}/dump.json`, Buffer.from(JSON.stringify(info)));
      })(),
      archive,
    );
    const r = await restoreHosting({ source: tarFileSource(archive), config, components: ["db"] });
    expect(r.status).toBe("failed");
    expect(r.errors.join()).toMatch(/client command/);
    expect(existsSync(marker1)).toBe(false);
    expect(existsSync(marker2)).toBe(false);
    // The half-loaded new database was removed again.
    expect(my(`SHOW DATABASES LIKE '${evilDb}'`)).toBe("");
  });

  it("the mariadb client alone (sandbox, no guard) also refuses to run \\! from a dump", () => {
    const marker = join(work, "pwned-direct");
    let failed = false;
    try {
      execFileSync("mariadb", ["-h", "127.0.0.1", "-uroot", "--sandbox", "--batch"], {
        input: `SELECT 1;\n\\! touch ${marker}\nsystem touch ${marker}\n`,
        stdio: ["pipe", "ignore", "ignore"],
      });
    } catch {
      failed = true;
    }
    expect(failed).toBe(true);
    expect(existsSync(marker)).toBe(false);
  });

  it("keeps key modes and refuses a config with inline problems", async () => {
    expect(() => parseHostConfig({ databaseServers: [{ name: "x", engine: "oracle", user: "u" }] })).toThrow(
      /invalid host config/,
    );
    const key = join(root, "ssl/site0.example.com/key.pem");
    const mode = statSync(key).mode & 0o777;
    const entries: ArchiveEntry[] = [];
    const { entries: it } = hostingEntries({
      inventory,
      config,
      selection: { domains: ["site0.example.com"], components: ["ssl"] },
    });
    for await (const e of it) entries.push(e);
    expect(entries.find((e) => e.name === "site0.example.com/ssl/key.pem")?.mode).toBe(mode);
    expect(readFileSync(key).length).toBeGreaterThan(0);
  });
});
