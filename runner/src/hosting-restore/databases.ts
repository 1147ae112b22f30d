import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import type { Writable } from "node:stream";
import type { DatabaseServerConfig } from "../inventory/config";
import { connectionFor, runClient, stderrTail, waitExit, type DbConnection } from "../sources/db-client";
import { HostingError } from "../sources/errors";
import { MYSQL_DUMP_TOOL } from "../sources/mysql";
import { SqlClientCommandGuard } from "./sql-guard";

// Names are interpolated as quoted identifiers: only plain names qualify (no quote characters).
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_$.-]{0,63}$/;
function checkName(name: string): string {
  if (!SAFE_NAME.test(name))
    throw new HostingError("RESTORE_FAILED", `unsupported database name ${JSON.stringify(name)}`);
  return name;
}

async function sql(server: DatabaseServerConfig, statement: string, db?: string): Promise<string> {
  const conn = await connectionFor(server);
  try {
    if (server.engine === "mysql") {
      return await runClient(
        "mariadb",
        [
          ...conn.args,
          "--batch",
          "--skip-column-names",
          ...(db ? [`--database=${db}`] : []),
          "-e",
          statement,
        ],
        conn.env,
      );
    }
    return await runClient(
      "psql",
      [...conn.args, "-d", db ?? "postgres", "-AtX", "-v", "ON_ERROR_STOP=1", "-c", statement],
      conn.env,
    );
  } finally {
    await conn.dispose();
  }
}

export async function databaseExists(server: DatabaseServerConfig, name: string): Promise<boolean> {
  checkName(name);
  const q =
    server.engine === "mysql"
      ? `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '${name}'`
      : `SELECT COUNT(*) FROM pg_database WHERE datname = '${name}'`;
  return (await sql(server, q)).trim() !== "0";
}

export async function createDatabase(server: DatabaseServerConfig, name: string): Promise<void> {
  checkName(name);
  await sql(server, server.engine === "mysql" ? `CREATE DATABASE \`${name}\`` : `CREATE DATABASE "${name}"`);
}

export async function dropDatabase(server: DatabaseServerConfig, name: string): Promise<void> {
  checkName(name);
  await sql(
    server,
    server.engine === "mysql"
      ? `DROP DATABASE IF EXISTS \`${name}\``
      : `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`,
  );
}

/** Number of user tables: the verifying phase checks a restored database is there and not empty when the dump was not. */
export async function tableCount(server: DatabaseServerConfig, name: string): Promise<number> {
  checkName(name);
  const q =
    server.engine === "mysql"
      ? `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${name}'`
      : `SELECT COUNT(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog','information_schema')`;
  return Number((await sql(server, q, server.engine === "postgres" ? name : undefined)).trim());
}

/** A plain dump file of an existing database (the pre-restore safety copy). */
export async function dumpDatabaseToFile(
  server: DatabaseServerConfig,
  name: string,
  path: string,
): Promise<void> {
  checkName(name);
  const conn = await connectionFor(server);
  try {
    const args =
      server.engine === "mysql"
        ? [
            ...conn.args,
            "--single-transaction",
            "--routines",
            "--triggers",
            "--events",
            "--hex-blob",
            "--",
            name,
          ]
        : [...conn.args, "-Fc", "-d", name];
    const child = spawn(server.engine === "mysql" ? MYSQL_DUMP_TOOL : "pg_dump", args, {
      env: conn.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const tail = stderrTail(child);
    const exited = waitExit(child);
    await pipeline(child.stdout!, createWriteStream(path, { mode: 0o600 }));
    const { code, signal } = await exited;
    if (code !== 0)
      throw new HostingError("DUMP_FAILED", `safety dump of ${name} failed (${code ?? signal}): ${tail()}`);
  } finally {
    await conn.dispose();
  }
}

export interface DbRestoreProcess {
  /** Write the dump's bytes here, then end it. */
  input: Writable;
  /** Resolves when the client exited 0; rejects with the reason otherwise. */
  done: Promise<void>;
  abort(): void;
}

/**
 * Starts the client that loads a dump into `target`. MySQL: the mariadb client with `--sandbox`
 * behind SqlClientCommandGuard, so no shell, file or connection command from the dump can run.
 * PostgreSQL: pg_restore reads the custom-format archive and sends only SQL to the server; it has
 * no psql meta-commands (`\!` is a psql feature, a custom-format dump is not a script).
 */
export async function startDbRestore(
  server: DatabaseServerConfig,
  target: string,
): Promise<DbRestoreProcess> {
  checkName(target);
  const conn: DbConnection = await connectionFor(server);
  let child: ChildProcess;
  let input: Writable;
  let guard: SqlClientCommandGuard | undefined;
  if (server.engine === "mysql") {
    child = spawn("mariadb", [...conn.args, "--sandbox", "--batch", `--database=${target}`], {
      env: conn.env,
      stdio: ["pipe", "ignore", "pipe"],
    });
    guard = new SqlClientCommandGuard();
    input = guard;
  } else {
    const args = [...conn.args, "--no-owner", "--no-privileges", "--exit-on-error", "-d", target];
    child = spawn("pg_restore", args, { env: conn.env, stdio: ["pipe", "ignore", "pipe"] });
    input = child.stdin!;
  }
  const tail = stderrTail(child);
  const exited = waitExit(child);
  exited.catch(() => {});
  child.stdin!.on("error", () => {});
  let guardError: Error | undefined;
  if (guard) {
    guard.on("error", (e) => {
      guardError = e;
      // Kill, never end stdin: a closed stdin would let the client run what it already buffered.
      child.kill("SIGKILL");
    });
    guard.pipe(child.stdin!);
  }
  const done = (async () => {
    try {
      const { code, signal } = await exited.catch((e: Error) => {
        throw new HostingError("RESTORE_FAILED", `cannot start restore client: ${e.message}`);
      });
      if (guardError) throw guardError;
      if (code !== 0)
        throw new HostingError(
          "RESTORE_FAILED",
          `${server.engine === "mysql" ? "mariadb" : "pg_restore"} into ${target} ${signal ? `killed by ${signal}` : `exited ${code}`}: ${tail() || "no error output"}`,
        );
    } finally {
      await conn.dispose();
    }
  })();
  done.catch(() => {});
  return { input, done, abort: () => child.kill("SIGKILL") };
}
