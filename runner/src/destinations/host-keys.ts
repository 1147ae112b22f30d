/**
 * SSH host key checks: against an OpenSSH known_hosts file when one is given, otherwise trust on
 * first use, recorded in a state file. A key that differs from the known one is always refused.
 */
import { createHash, createHmac } from "node:crypto";
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../util/atomic-write";

export type HostKeyVerdict = { ok: true } | { ok: false; reason: string };

/** The name known_hosts uses for a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
}

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith("|1|")) {
    const [, , salt, hash] = pattern.split("|");
    if (!salt || !hash) return false;
    return createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64") === hash;
  }
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
  );
  return re.test(name);
}

/** Checks `key` (the raw SSH key blob) for `host:port` against the lines of a known_hosts file. */
export function checkKnownHosts(text: string, host: string, port: number, key: Buffer): HostKeyVerdict {
  const name = knownHostsName(host, port);
  const blob = key.toString("base64");
  let seen = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    const marker = fields[0]?.startsWith("@") ? fields.shift() : undefined;
    const [hosts, , keyData] = fields;
    if (!hosts || !keyData || marker === "@cert-authority") continue;
    const patterns = hosts.split(",");
    const negated = patterns.some((p) => p.startsWith("!") && patternMatches(p.slice(1), name));
    if (negated || !patterns.some((p) => !p.startsWith("!") && patternMatches(p, name))) continue;
    if (marker === "@revoked") {
      if (keyData === blob)
        return { ok: false, reason: `host key ${fingerprint(key)} of ${name} is revoked` };
      continue;
    }
    seen = true;
    if (keyData === blob) return { ok: true };
  }
  return {
    ok: false,
    reason: seen
      ? `host key of ${name} changed (now ${fingerprint(key)}); refusing to connect`
      : `${name} is not in the known_hosts file (its key is ${fingerprint(key)})`,
  };
}

interface TofuStore {
  version: 1;
  hosts: Record<string, { key: string; fingerprint: string; firstSeen: string }>;
}

/** Trust on first use: remember the first key seen for host:port; refuse any other key later. */
export async function checkTofu(
  storePath: string,
  host: string,
  port: number,
  key: Buffer,
): Promise<HostKeyVerdict> {
  const name = knownHostsName(host, port);
  let store: TofuStore = { version: 1, hosts: {} };
  try {
    store = JSON.parse(await readFile(storePath, "utf8")) as TofuStore;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      return { ok: false, reason: `cannot read host key store ${storePath}: ${(err as Error).message}` };
    }
  }
  const known = store.hosts[name];
  const blob = key.toString("base64");
  if (known) {
    return known.key === blob
      ? { ok: true }
      : {
          ok: false,
          reason: `host key of ${name} changed (was ${known.fingerprint}, now ${fingerprint(key)}); refusing to connect`,
        };
  }
  store.hosts[name] = { key: blob, fingerprint: fingerprint(key), firstSeen: new Date().toISOString() };
  await writeFileAtomic(storePath, `${JSON.stringify(store, null, 2)}\n`);
  return { ok: true };
}
