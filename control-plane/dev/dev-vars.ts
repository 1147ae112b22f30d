/**
 * Node helper (not part of the Worker): generates the Worker's secrets for local runs and writes them
 * as a `.dev.vars` file (mode 0600). `npx tsx control-plane/dev/dev-vars.ts [path]` writes
 * `<repo>/.dev.vars` unless it exists. Production uses `wrangler secret put` with the same values.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface DevSecrets {
  JOB_SIGNING_KEYS: string;
  MASTER_KEY: string;
  SETUP_TOKEN: string;
}

export function generateDevSecrets(): DevSecrets {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const kid = `k-${new Date().toISOString().slice(0, 10)}-${randomBytes(4).toString("hex")}`;
  return {
    JOB_SIGNING_KEYS: JSON.stringify([{ ...jwk, kid }]),
    MASTER_KEY: randomBytes(32).toString("base64"),
    SETUP_TOKEN: randomBytes(32).toString("base64url"),
  };
}

/** dotenv format; values are single-quoted JSON/base64 (no quotes inside them). */
export function devVarsText(s: DevSecrets): string {
  return Object.entries(s)
    .map(([k, v]) => `${k}='${v}'`)
    .join("\n")
    .concat("\n");
}

export function writeDevVars(file: string, s = generateDevSecrets()): DevSecrets {
  writeFileSync(file, devVarsText(s), { mode: 0o600, flag: "wx" });
  return s;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = path.resolve(
    process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), "../../.dev.vars"),
  );
  if (existsSync(file)) {
    console.error(`${file} exists; not overwriting`);
    process.exit(1);
  }
  writeDevVars(file);
  console.log(`wrote ${file}`);
}
