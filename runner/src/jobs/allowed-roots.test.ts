import { mkdir, mkdtemp, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { resolveAllowedSource, resolveAllowedTarget } from "./allowed-roots";

let d: string;
beforeAll(async () => {
  d = await mkdtemp(path.join(os.tmpdir(), "cairn-roots-"));
  await mkdir(path.join(d, "www", "site"), { recursive: true });
  await mkdir(path.join(d, "www2"), { recursive: true });
  await mkdir(path.join(d, "www", "..hidden"), { recursive: true });
  await writeFile(path.join(d, "secret"), "x");
  await symlink(path.join(d, "secret"), path.join(d, "www", "link-out"));
  await symlink(path.join(d, "www"), path.join(d, "alias"));
});

const code = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (e: { code?: string }) => e.code ?? "??",
  );

describe("allowed roots", () => {
  it("accepts the root itself and paths below it, by real path", async () => {
    const roots = [path.join(d, "www")];
    expect(await resolveAllowedSource(path.join(d, "www"), roots)).toBe(path.join(d, "www"));
    expect(await resolveAllowedSource(path.join(d, "www", "site"), roots)).toBe(path.join(d, "www", "site"));
    expect(await resolveAllowedSource(path.join(d, "www", "..hidden"), roots)).toBe(
      path.join(d, "www", "..hidden"),
    );
    expect(await resolveAllowedSource(path.join(d, "alias", "site"), roots)).toBe(
      path.join(d, "www", "site"),
    );
  });

  it("refuses siblings with a common prefix, symlinks that leave, traversal and relative paths", async () => {
    const roots = [path.join(d, "www")];
    expect(await code(resolveAllowedSource(path.join(d, "www2"), roots))).toBe("SOURCE_NOT_ALLOWED");
    expect(await code(resolveAllowedSource(path.join(d, "www", "link-out"), roots))).toBe(
      "SOURCE_NOT_ALLOWED",
    );
    expect(await code(resolveAllowedSource(path.join(d, "www", "..", "secret"), roots))).toBe(
      "SOURCE_NOT_ALLOWED",
    );
    expect(await code(resolveAllowedSource("www/site", roots))).toBe("SOURCE_NOT_ALLOWED");
    expect(await code(resolveAllowedSource(path.join(d, "www", "missing"), roots))).toBe(
      "SOURCE_NOT_ALLOWED",
    );
    expect(await code(resolveAllowedSource(path.join(d, "www"), []))).toBe("SOURCE_NOT_ALLOWED");
  });

  it("resolves restore targets that do not exist yet through their existing ancestor", async () => {
    const roots = [path.join(d, "www")];
    expect(await resolveAllowedTarget(path.join(d, "alias", "new", "dir"), roots)).toBe(
      path.join(d, "www", "new", "dir"),
    );
    expect(await code(resolveAllowedTarget(path.join(d, "www2", "new"), roots))).toBe("SOURCE_NOT_ALLOWED");
    expect(await code(resolveAllowedTarget("/etc/cron.d/x", roots))).toBe("SOURCE_NOT_ALLOWED");
  });
});
