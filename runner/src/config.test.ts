import { chmod, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseConfig, writeConfig, type RunnerConfigInput } from "./config";
import { makeRunnerConfig, makeSigningKey } from "./daemon/test-fixtures";

let input: RunnerConfigInput;
let dir: string;

beforeAll(async () => {
  const r = await makeRunnerConfig(await makeSigningKey(), { defaultSources: ["/srv/www"] });
  input = r.input;
  dir = r.dir;
});

describe("runner config", () => {
  it("is written with mode 0600 (even over a world-readable file) and reads back", async () => {
    const file = path.join(dir, "etc", "runner.json");
    await writeConfig(file, input);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await chmod(file, 0o644);
    const loose = await loadConfig(file);
    expect(loose.insecureMode).toBe(0o644);
    await writeConfig(file, input);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const { config, insecureMode } = await loadConfig(file);
    expect(insecureMode).toBeUndefined();
    expect(config.runnerId).toBe("run_test1");
    expect(config.concurrency).toBe(1);
    expect(config.allowedRoots).toEqual(["/srv/www"]); // defaults to defaultSources
  });

  it("rejects invalid configs with a clear error and does not overwrite a good file", async () => {
    const file = path.join(dir, "good.json");
    await writeConfig(file, input);
    const before = await readFile(file, "utf8");
    await expect(writeConfig(file, { ...input, stateDir: "relative/dir" })).rejects.toThrow(
      /stateDir: must be an absolute path/,
    );
    expect(await readFile(file, "utf8")).toBe(before);
    expect(() => parseConfig({ ...input, jwks: { keys: [] } })).toThrow(ConfigError);
    expect(() => parseConfig({ ...input, controlPlaneUrl: "ftp://x" })).toThrow(/controlPlaneUrl/);
    // a pinned key without kid, or not Ed25519, cannot verify jobs
    const k = input.jwks.keys[0]!;
    expect(() => parseConfig({ ...input, jwks: { keys: [{ ...k, kid: undefined }] } } as never)).toThrow(
      /jwks/,
    );
    expect(() => parseConfig({ ...input, jwks: { keys: [{ ...k, crv: "X25519" }] } } as never)).toThrow(
      /jwks/,
    );
  });

  it("reports a missing file and bad JSON by name", async () => {
    await expect(loadConfig(path.join(dir, "missing.json"))).rejects.toMatchObject({
      code: "CONFIG_NOT_FOUND",
    });
    const bad = path.join(dir, "bad.json");
    await writeFile(bad, "{", { mode: 0o600 });
    await expect(loadConfig(bad)).rejects.toMatchObject({ code: "CONFIG_INVALID" });
  });
});
