import { spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DatabaseServerConfig } from "../inventory/config";
import { HostingError } from "./errors";

/**
 * Connection arguments for the database CLIs. Passwords never go on a command line (visible in `ps`):
 * MySQL gets a defaults-extra-file, PostgreSQL a passfile, both 0600 in a private 0700 temp dir
 * that is removed when the caller is done.
 */
export interface DbConnection {
  /** Arguments that select the server and user (for mysql: must come first). */
  args: string[];
  env: NodeJS.ProcessEnv;
  dispose(): Promise<void>;
}

async function readPassword(file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  try {
    return (await readFile(file, "utf8")).split(/\r?\n/)[0];
  } catch (e) {
    throw new HostingError(
      "CONFIG_INVALID",
      `cannot read password file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

async function privateDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cairn-db-"));
  await chmod(dir, 0o700);
  return dir;
}

/** Values in option files: quote and escape so a password cannot end the line or the value. */
const optValue = (v: string) => `"${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;

export async function mysqlConnection(s: DatabaseServerConfig): Promise<DbConnection> {
  const password = await readPassword(s.passwordFile);
  const dir = await privateDir();
  const file = join(dir, "client.cnf");
  const lines = ["[client]", `user=${optValue(s.user)}`];
  if (password !== undefined) lines.push(`password=${optValue(password)}`);
  if (s.socket) lines.push(`socket=${optValue(s.socket)}`);
  else lines.push(`host=${optValue(s.host)}`, `port=${s.port ?? 3306}`, "protocol=tcp");
  await writeFile(file, lines.join("\n") + "\n", { mode: 0o600 });
  const env = { ...process.env };
  delete env.MYSQL_PWD;
  return {
    args: [`--defaults-extra-file=${file}`],
    env,
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}

export async function postgresConnection(s: DatabaseServerConfig): Promise<DbConnection> {
  const password = await readPassword(s.passwordFile);
  const dir = await privateDir();
  const env: NodeJS.ProcessEnv = { ...process.env, PGCONNECT_TIMEOUT: "10" };
  delete env.PGPASSWORD;
  if (password !== undefined) {
    const file = join(dir, "pgpass");
    const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/:/g, "\\:");
    await writeFile(file, `*:*:*:${esc(s.user)}:${esc(password)}\n`, { mode: 0o600 });
    env.PGPASSFILE = file;
  }
  const host = s.socket ?? s.host;
  const args = ["-h", host, "-p", String(s.port ?? 5432), "-U", s.user, "-w"];
  return { args, env, dispose: () => rm(dir, { recursive: true, force: true }) };
}

export function connectionFor(s: DatabaseServerConfig): Promise<DbConnection> {
  return s.engine === "mysql" ? mysqlConnection(s) : postgresConnection(s);
}

/** Collects a bounded tail of stderr so errors can name the cause without unbounded memory. */
export function stderrTail(child: ChildProcess, max = 4096): () => string {
  let buf = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => {
    buf = (buf + d).slice(-max);
  });
  return () => buf.trim();
}

/** Resolves with the exit code, or the signal name when the process was killed. */
export function waitExit(
  child: ChildProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null)
      return resolve({ code: child.exitCode, signal: child.signalCode });
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
}

/** Runs a client to completion and returns stdout; throws with stderr's tail on failure. */
export async function runClient(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  input?: string,
): Promise<string> {
  const child = spawn(cmd, args, { env, stdio: ["pipe", "pipe", "pipe"] });
  const err = stderrTail(child);
  let out = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (d: string) => (out += d));
  child.stdin.on("error", () => {});
  child.stdin.end(input ?? "");
  const { code, signal } = await waitExit(child).catch((e: Error) => {
    throw new HostingError("SOURCE_FAILED", `${cmd}: ${e.message}`);
  });
  if (code !== 0) {
    const why = err() || `exit ${code ?? signal}`;
    const unreachable =
      /can't connect|connection refused|could not connect|lost connection|timeout expired|No such file or directory/i.test(
        why,
      );
    throw new HostingError(unreachable ? "DB_UNREACHABLE" : "SOURCE_FAILED", `${cmd} failed: ${why}`);
  }
  return out;
}

const MYSQL_SYSTEM = new Set(["information_schema", "performance_schema", "mysql", "sys"]);
const PG_SYSTEM = new Set(["postgres", "template0", "template1"]);

export async function listDatabases(s: DatabaseServerConfig): Promise<string[]> {
  const conn = await connectionFor(s);
  try {
    let names: string[];
    if (s.engine === "mysql") {
      const out = await runClient(
        "mariadb",
        [...conn.args, "--batch", "--skip-column-names", "-e", "SHOW DATABASES"],
        conn.env,
      );
      names = out.split("\n").filter((n) => n && !MYSQL_SYSTEM.has(n));
    } else {
      const sql = "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY datname";
      const out = await runClient("psql", [...conn.args, "-d", "postgres", "-AtX", "-c", sql], conn.env);
      names = out.split("\n").filter((n) => n && !PG_SYSTEM.has(n));
    }
    return names.filter((n) => !s.ignore.includes(n)).sort();
  } finally {
    await conn.dispose();
  }
}
