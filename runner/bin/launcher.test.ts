import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const LAUNCHER = resolve(import.meta.dirname, "cairn-runner");
const dir = mkdtempSync(join(tmpdir(), "cairn-launcher-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Stands in for node: prints what the launcher hands it. */
const fakeNode = join(dir, "fake-node");
writeFileSync(fakeNode, '#!/bin/sh\necho "arena=$MALLOC_ARENA_MAX"\nfor a in "$@"; do echo "arg=$a"; done\n');
chmodSync(fakeNode, 0o755);

function run(bin: string, env: Record<string, string | undefined>): string[] {
  const r = spawnSync(bin, ["backup", "--name", "two words"], {
    env: { PATH: process.env.PATH, NODE: fakeNode, ...env },
    encoding: "utf8",
  });
  expect(r.status).toBe(0);
  return r.stdout.trim().split("\n");
}

describe("runner/bin/cairn-runner", () => {
  it("limits malloc arenas and hands the CLI its arguments unchanged", () => {
    expect(run(LAUNCHER, {})).toEqual([
      "arena=2",
      `arg=${join(import.meta.dirname, "cairn-runner.mjs")}`,
      "arg=backup",
      "arg=--name",
      "arg=two words",
    ]);
  });

  it("keeps a value the environment already sets", () => {
    expect(run(LAUNCHER, { MALLOC_ARENA_MAX: "8" })[0]).toBe("arena=8");
  });

  it("finds the CLI beside itself when called through a symlink (npm's bin link)", () => {
    const link = join(dir, "cairn-runner");
    symlinkSync(LAUNCHER, link);
    expect(run(link, {})[1]).toBe(`arg=${join(import.meta.dirname, "cairn-runner.mjs")}`);
  });

  it("runs the real CLI with the node on PATH", () => {
    const r = spawnSync(LAUNCHER, ["--help"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("usage: cairn-runner <command>");
  });
});
