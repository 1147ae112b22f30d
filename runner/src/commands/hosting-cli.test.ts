import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { treeDigest } from "../../../tests/hosting/helpers";

/** `cairn-runner backup|restore` in hosting mode, as a real process: selection, partial exit code, restore by domain. */

const BIN = resolve(__dirname, "../../bin/cairn-runner.mjs");
const DATASET = "/work/shared/bench/make-hosting-dataset.mjs";
let work: string;
let root: string;

function cli(args: string[]) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((ok, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", fail);
    child.on("exit", (code) => ok({ code, stdout, stderr }));
  });
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "cairn-hosting-cli-"));
  root = join(work, "host");
  execFileSync("node", [DATASET, "--out", root, "--mib", "2"]);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("cairn-runner backup/restore --domains --components", () => {
  it("backs up two domains' web+dns and restores one domain's web into a new root, byte for byte", async () => {
    const out = join(work, "out");
    const b = await cli([
      "backup",
      "--root",
      root,
      "--domains",
      "site0.example.com,site2.example.com",
      "--components",
      "web,dns",
      "--out",
      out,
      "--json",
    ]);
    expect(b.code, b.stderr).toBe(0);
    const res = JSON.parse(b.stdout);
    expect(res).toMatchObject({ status: "complete", domains: ["site0.example.com", "site2.example.com"] });

    const target = join(work, "restored");
    const r = await cli([
      "restore",
      res.path,
      "--target",
      target,
      "--domains",
      "site2.example.com",
      "--components",
      "web",
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("restore completed");
    // Phases reach the CLI output in order.
    const phases = [
      "validating",
      "decrypting",
      "extracting files",
      "restoring databases",
      "verifying",
      "completed",
    ];
    const at = phases.map((p) =>
      r.stderr.indexOf(`\n${p} `) >= 0 ? r.stderr.indexOf(`\n${p} `) : r.stderr.indexOf(`${p} `),
    );
    expect(at.every((x, i) => x >= 0 && (i === 0 || x > at[i - 1]!))).toBe(true);
    const web = (base: string, d: string) =>
      join(base, "home", `user${d}`, "domains", `site${d}.example.com`, "public_html");
    expect(treeDigest(web(target, "2"))).toBe(treeDigest(web(root, "2")));
  }, 60_000);

  it("a dead database server makes the backup partial (exit 3) with the reason, and the web files are still in it", async () => {
    const cfg = join(work, "dead.json");
    writeFileSync(
      cfg,
      JSON.stringify({
        domains: { "site0.example.com": { databases: [{ engine: "postgres", name: "nothere" }] } },
        databaseServers: [{ name: "pg", engine: "postgres", host: "127.0.0.1", port: 1, user: "postgres" }],
      }),
    );
    const b = await cli([
      "backup",
      "--root",
      root,
      "--config",
      cfg,
      "--domains",
      "site0.example.com",
      "--components",
      "web,db",
      "--out",
      join(work, "out2"),
      "--json",
    ]);
    expect(b.code, b.stderr).toBe(3);
    const res = JSON.parse(b.stdout);
    expect(res.status).toBe("partial");
    expect(res.failures).toEqual([
      expect.objectContaining({ domain: "site0.example.com", component: "db", item: "postgres/nothere" }),
    ]);
    expect(res.warnings.some((w: string) => w.includes("site0.example.com db postgres/nothere failed"))).toBe(
      true,
    );
    expect(res.fileCount).toBeGreaterThan(10);
  }, 60_000);

  it("unknown domains and components are usage errors (exit 2) naming them", async () => {
    const b = await cli([
      "backup",
      "--root",
      root,
      "--domains",
      "nope.example.com",
      "--out",
      join(work, "o3"),
    ]);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain("nope.example.com");
    const c = await cli(["backup", "--root", root, "--components", "web,ftp", "--out", join(work, "o3")]);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain("ftp");
  });
});
