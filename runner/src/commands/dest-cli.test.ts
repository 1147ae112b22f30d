/**
 * The CLI with destination URLs against a real s3rver: `backup --dest URL --dest URL2` writes both from
 * one run and prints each URL; `verify`, `inspect` and `restore` take such a URL as the archive.
 */
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeTree, makeTree, tempDir } from "../archive/test-helpers";
import { startS3Server, type TestS3Server } from "../../../tests/destinations/s3-server";

const BIN = resolve(__dirname, "../../bin/cairn-runner.mjs");
const root = tempDir("cairn-dest-cli-");
let s3: TestS3Server;

beforeAll(async () => {
  s3 = await startS3Server(["cli"]);
});
afterAll(async () => {
  await s3?.close();
  rmSync(root, { recursive: true, force: true });
});

/** Async spawn: the s3rver child must keep answering while the CLI runs. */
function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((ok, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", fail);
    child.on("exit", (code) => ok({ code, stdout, stderr }));
  });
}

describe("CLI with destination URLs", () => {
  it("backs up to two S3 locations at once, then verifies, inspects and restores from a URL", async () => {
    const src = join(root, "site");
    mkdirSync(src);
    makeTree(src, { bigBytes: 2 * 1024 * 1024 + 1 });
    writeFileSync(join(root, "pw"), "Hosting-Key1!x\n");
    const s3flags = ["--s3-endpoint", s3.endpoint, "--s3-path-style", "--s3-region", "us-east-1"];
    const b = await cli([
      "backup",
      "--source",
      src,
      "--name",
      "site",
      "--encrypt",
      "password",
      "--password-file",
      join(root, "pw"),
      "--dest",
      "s3://cli/one",
      "--dest",
      "s3://cli/two/deeper",
      ...s3flags,
    ]);
    expect(b.stderr).not.toContain("Hosting-Key1");
    expect(b.code).toBe(0);
    const urls = b.stdout.trim().split("\n");
    expect(urls).toHaveLength(2);
    expect(urls[0]).toMatch(/^s3:\/\/cli\/one\/site_full_\d{8}_\d{6}\.tar\.zst\.enc$/);
    expect(urls[1]).toMatch(/^s3:\/\/cli\/two\/deeper\/site_full_\d{8}_\d{6}\.tar\.zst\.enc$/);

    const v = await cli(["verify", urls[1]!, "--password-file", join(root, "pw"), ...s3flags]);
    expect(v.stderr).toBe("");
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^OK site_full_/);
    const i = await cli(["inspect", urls[0]!, "--password-file", join(root, "pw"), ...s3flags]);
    expect(i.code).toBe(0);
    expect(i.stdout).toContain("backup site full");
    const target = join(root, "restored");
    const r = await cli([
      "restore",
      urls[0]!,
      "--target",
      target,
      "--password-file",
      join(root, "pw"),
      ...s3flags,
    ]);
    expect(r.code).toBe(0);
    expect(readdirSync(target)).toEqual(["site"]);
    expect(describeTree(join(target, "site"))).toEqual(describeTree(src));
    // Nothing was staged on local disk: the CLI had no --out and the working dir gained no archive.
    expect(readdirSync(root).filter((f) => f.includes(".tar.zst"))).toEqual([]);
  });

  it("wrong credentials fail with AUTH_FAILED on one line and exit 1", async () => {
    const src = join(root, "small");
    mkdirSync(src);
    writeFileSync(join(src, "a.txt"), "a\n");
    const r = await cli(
      ["backup", "--source", src, "--dest", "s3://cli/x", "--s3-endpoint", s3.endpoint, "--s3-path-style"],
      { AWS_ACCESS_KEY_ID: "WRONG", AWS_SECRET_ACCESS_KEY: "nope-secret" },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^AUTH_FAILED /);
    expect(r.stderr).not.toContain("nope-secret");
  });
});
