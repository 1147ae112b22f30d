/**
 * End to end: the real Worker (workerd + local D1), a real `cairn-runner` process, a backup taken
 * through the HTTP API, and the archive checked with the stock `zstd` and `tar` commands.
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  mkdirSync,
  readFileSync,
  readdirSync,
  writeFileSync,
  mkdtempSync,
  rmSync,
  existsSync,
} from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Cluster,
  type RunnerHandle,
  startCluster,
  startOnlineRunner,
  waitForJobEnd,
} from "../support/cluster";

let cluster: Cluster;
let runner: RunnerHandle;
let source: string;
let runnerId: string;

function makeSourceTree(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const put = (rel: string, data: Buffer) => {
    mkdirSync(join(dir, rel, ".."), { recursive: true });
    writeFileSync(join(dir, rel), data);
    files.set(rel, data);
  };
  put("public_html/index.html", Buffer.from("<h1>hello</h1>\n"));
  put("public_html/a long directory name with spaces/ünïcødé.txt", Buffer.from("unicode name\n"));
  put("public_html/uploads/photo.bin", randomBytes(3 * 1024 * 1024 + 17));
  put("logs/access.log", Buffer.from("GET / 200\n".repeat(50_000)));
  for (let i = 0; i < 40; i++)
    put(`public_html/pages/p${i}.html`, Buffer.from(`<p>page ${i}</p>\n`.repeat(i + 1)));
  return files;
}

beforeAll(async () => {
  cluster = await startCluster();
  source = join(cluster.dir, "site");
  mkdirSync(source, { recursive: true });
  ({ runner, runnerId } = await startOnlineRunner(cluster, "e2e-1", [source]));
}, 120_000);

afterAll(async () => {
  await runner?.stop();
  await cluster?.close();
});

describe("backup through the API to a real runner", () => {
  it("produces an archive that stock zstd and tar read back byte for byte", async () => {
    const files = makeSourceTree(source);
    const { backup, job } = await cluster.api.createBackup({ runnerId, name: "site", type: "full" });
    expect(backup.id).toBeTruthy();

    const done = await waitForJobEnd(cluster, job.id);
    expect(done.state, JSON.stringify(done)).toBe("SUCCEEDED");

    const b = await cluster.api.getBackup(backup.id);
    expect(b.status).toBe("completed");
    expect(b.fileName).toMatch(/^site_full_\d{8}_\d{6}\.tar\.zst$/);
    const archive = join(runner.backupDir, String(b.fileName));
    const bytes = readFileSync(archive);
    expect(b.size).toBe(bytes.length);
    expect(b.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
    // Nothing half-written is left beside it.
    expect(readdirSync(runner.backupDir).filter((f) => f.startsWith(".") || f.endsWith(".tmp"))).toEqual([]);

    const out = mkdtempSync(join(cluster.dir, "extract-"));
    try {
      execFileSync("bash", ["-c", `zstd -dc "${archive}" | tar -x -C "${out}"`]);
      // The source directory is stored under its basename.
      for (const [rel, data] of files) {
        const restored = join(out, "site", rel);
        expect(existsSync(restored), rel).toBe(true);
        expect(readFileSync(restored).equals(data), rel).toBe(true);
      }
      expect(b.fileCount).toBeGreaterThanOrEqual(files.size);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("rejects a backup for an unknown runner with 404 and never 500", async () => {
    await expect(
      cluster.api.createBackup({ runnerId: "run_doesnotexist", name: "x", type: "full" }),
    ).rejects.toMatchObject({ status: 404 });
    await expect(cluster.api.createBackup({ runnerId, name: 42, type: "full" })).rejects.toMatchObject({
      status: 400,
    });
  });
});
