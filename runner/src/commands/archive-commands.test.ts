import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describeTree, makeTree, tempDir } from "../archive/test-helpers";

const BIN = resolve(__dirname, "../../bin/cairn-runner.mjs");
const root = tempDir();
afterAll(() => rmSync(root, { recursive: true, force: true }));
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "buffer" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
};

describe("archive CLI commands", () => {
  const src = join(root, "site");
  mkdirSync(src);
  makeTree(src, { bigBytes: 100 * 1024 });
  writeFileSync(join(root, "pw"), "Hosting-Key1!x\n");
  writeFileSync(join(root, "bad"), "Wrong-Key1!xx\n");
  writeFileSync(join(root, "weak"), "password\n");
  let archive = "";

  it("backup prints the archive path; weak passwords are refused with USAGE", () => {
    const weak = cli(
      "backup",
      "--source",
      src,
      "--out",
      join(root, "out"),
      "--encrypt",
      "password",
      "--password-file",
      join(root, "weak"),
    );
    expect(weak.code).toBe(2);
    expect(weak.stderr).toMatch(/^USAGE password does not meet the policy/);
    const r = cli(
      "backup",
      "--source",
      src,
      "--out",
      join(root, "out"),
      "--name",
      "site1",
      "--encrypt",
      "password",
      "--password-file",
      join(root, "pw"),
    );
    expect(r.stderr).not.toMatch(/Hosting-Key1/);
    expect(r.code).toBe(0);
    archive = r.stdout.toString().trim();
    expect(archive).toMatch(/\/site1_full_\d{8}_\d{6}\.tar\.zst\.enc$/);
  });

  it("verify, restore and decrypt; wrong key -> WRONG_KEY one line", () => {
    expect(cli("verify", archive, "--password-file", join(root, "pw")).code).toBe(0);
    const bad = cli("verify", archive, "--password-file", join(root, "bad"));
    expect(bad.code).toBe(1);
    expect(
      bad.stderr
        .trim()
        .split("\n")
        .filter((l) => !l.startsWith("done") && l),
    ).toEqual(["WRONG_KEY wrong password"]);
    const r = cli(
      "restore",
      archive,
      "--target",
      join(root, "r"),
      "--password-file",
      join(root, "pw"),
      "--json",
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.toString()).files).toBeGreaterThan(30);
    expect(describeTree(join(root, "r/site"))).toEqual(describeTree(src));
    const d = cli("decrypt", archive, "--password-file", join(root, "pw"));
    expect(d.code).toBe(0);
    writeFileSync(join(root, "plain.tar.zst"), d.stdout);
    const t = spawnSync("sh", ["-c", `zstd -dc '${join(root, "plain.tar.zst")}' | tar -t`], {
      encoding: "utf8",
    });
    expect(t.stdout).toContain("site/private.key");
    expect(readFileSync(join(root, "plain.tar.zst")).subarray(0, 4).readUInt32LE(0)).toBe(0x184d2a50);
  });

  it("errors: NOT_FOUND and USAGE", () => {
    const nf = cli("verify", join(root, "nope.tar.zst"));
    expect([nf.code, nf.stderr.split(" ")[0]]).toEqual([1, "NOT_FOUND"]);
    const us = cli("restore", archive);
    expect([us.code, us.stderr.split(" ")[0]]).toEqual([2, "USAGE"]);
    const ins = cli("inspect", archive, "--json");
    expect(JSON.parse(ins.stdout.toString()).header.kdf).toEqual({ id: "scrypt", N: 131072, r: 8, p: 1 });
  });
});
