import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBackup } from "../../runner/src/archive";
import { discoverInventory, parseHostConfig } from "../../runner/src/inventory";
import { backupHosting } from "../../runner/src/sources";
import { engineRestoreSource, restoreHosting } from "../../runner/src/hosting-restore";
import { dropPgDatabases, pg, treeDigest } from "./helpers";

// The same round trip through the real archive engine (tar -> zstd frames -> AEAD, password mode).
const tag = `cairn_e${randomBytes(3).toString("hex")}`;
const DB = `${tag}_site0`;
let work: string;
const binding = { backupId: "b1", tenantId: "t1", chainRootId: "b1", parentId: null };

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "cairn-hosting-engine-"));
  execFileSync("node", [
    "/work/shared/bench/make-hosting-dataset.mjs",
    "--out",
    join(work, "host"),
    "--mib",
    "2",
    "--domains",
    "2",
  ]);
  pg(`CREATE DATABASE ${DB}`);
  pg(
    "CREATE TABLE t (id int primary key, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g;",
    DB,
  );
});

afterAll(() => {
  dropPgDatabases(tag);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("hosting sources through the archive engine", () => {
  it("backs up web + db into an encrypted archive and restores them by domain", async () => {
    const config = parseHostConfig({
      databaseServers: [{ name: "pg", engine: "postgres", host: "127.0.0.1", port: 5432, user: "postgres" }],
      databaseNaming: [{ pattern: `^${tag}_site(\\d)$`, domain: "site$1.example.com" }],
    });
    const inventory = await discoverInventory({ root: join(work, "host"), config });
    const encryption = { mode: "password" as const, password: "Hosting-Key1!x" };
    const res = await backupHosting({
      inventory,
      config,
      selection: { domains: ["site0.example.com"], components: ["web", "db", "ssl"] },
      partSize: 32 * 1024,
      write: (entries) =>
        createBackup({
          entries,
          outDir: join(work, "out"),
          name: "hosting",
          kind: "full",
          level: 3,
          encryption,
          binding,
          scrypt: { N: 1024, r: 8, p: 1 },
        }),
    });
    expect(res.status).toBe("complete");

    const wrong = await restoreHosting({
      source: engineRestoreSource({
        source: res.path,
        key: { mode: "password", password: "Wrong-Key1!xx" },
        binding,
      }),
      config,
      targetRoot: join(work, "never"),
    });
    expect(wrong.status).toBe("failed");

    const r = await restoreHosting({
      source: engineRestoreSource({
        source: res.path,
        key: { mode: "password", password: encryption.password },
        binding,
      }),
      config,
      targetRoot: join(work, "restored"),
      conflict: "rename",
      now: () => new Date("2026-03-04T05:06:07Z"),
    });
    expect(r.errors).toEqual([]);
    const web = inventory.domains[0]!.webRoot!;
    expect(treeDigest(join(work, "restored/home/user0/domains/site0.example.com/public_html"))).toBe(
      treeDigest(web),
    );
    expect(treeDigest(join(work, "restored/ssl/site0.example.com"))).toBe(
      treeDigest(inventory.domains[0]!.sslDir!),
    );
    const renamed = `${DB}_restored_20260304_050607`;
    expect(r.renamed).toEqual([{ engine: "postgres", from: DB, to: renamed }]);
    const sum = (db: string) => pg("SELECT count(*) || md5(string_agg(v, ',' ORDER BY id)) FROM t", db);
    expect(sum(renamed)).toBe(sum(DB));

    // Again with rename: web content exists now, so it goes beside it and nothing is overwritten.
    const again = await restoreHosting({
      source: engineRestoreSource({
        source: res.path,
        key: { mode: "password", password: encryption.password },
        binding,
      }),
      config,
      components: ["web"],
      targetRoot: join(work, "restored"),
      conflict: "rename",
      now: () => new Date("2026-03-04T05:06:08Z"),
    });
    expect(again.errors).toEqual([]);
    expect(
      treeDigest(
        join(work, "restored/home/user0/domains/site0.example.com/public_html.restored-20260304_050608"),
      ),
    ).toBe(treeDigest(web));
  });
});
