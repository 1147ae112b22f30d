import path from "node:path";
import { fileURLToPath } from "node:url";
import { readFileSync } from "node:fs";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

const here = path.dirname(fileURLToPath(import.meta.url));
// Test-only keys (generated for the tests, never deployed).
const secrets = JSON.parse(readFileSync(path.join(here, "test/test-secrets.json"), "utf8")) as Record<
  string,
  string
>;

export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(here, "migrations"));
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: path.join(here, "../wrangler.toml") },
        miniflare: {
          bindings: {
            TEST_MIGRATIONS: migrations,
            JOB_SIGNING_KEYS: secrets.JOB_SIGNING_KEYS!,
            MASTER_KEY: secrets.MASTER_KEY!,
            SETUP_TOKEN: "test-setup-token",
            JOB_LEASE_MS: "60000",
          },
        },
      }),
    ],
    test: {
      name: "control-plane",
      root: here,
      include: ["src/**/*.test.ts"],
      setupFiles: ["./test/apply-migrations.ts"],
      testTimeout: 30_000,
    },
  };
});
