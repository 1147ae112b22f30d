import { spawn } from "node:child_process";
import type { ArchiveEntry } from "../archive/types";
import type { DatabaseServerConfig } from "../inventory/config";
import { mysqlConnection } from "./db-client";
import { dumpEntries } from "./dump-parts";
import { dbDir } from "./layout";

/** `mariadb-dump` when installed (MariaDB), else `mysqldump`; overridable for other hosts. */
export const MYSQL_DUMP_TOOL = process.env.CAIRN_MYSQLDUMP ?? "mariadb-dump";

/**
 * One MySQL/MariaDB database as a consistent SQL dump: `--single-transaction` (InnoDB snapshot
 * without locking the site), routines, triggers and events included.
 */
export async function* mysqlEntries(
  server: DatabaseServerConfig,
  domain: string,
  database: string,
  opts: { partSize?: number } = {},
): AsyncGenerator<ArchiveEntry> {
  const conn = await mysqlConnection(server);
  try {
    const args = [
      ...conn.args,
      "--single-transaction",
      "--routines",
      "--triggers",
      "--events",
      "--hex-blob",
      "--default-character-set=utf8mb4",
      "--",
      database,
    ];
    const child = spawn(MYSQL_DUMP_TOOL, args, { env: conn.env, stdio: ["ignore", "pipe", "pipe"] });
    yield* dumpEntries(child, `${MYSQL_DUMP_TOOL} ${server.name}/${database}`, {
      dir: dbDir(domain, "mysql", database),
      domain,
      partSize: opts.partSize,
      info: {
        engine: "mysql",
        database,
        server: server.name,
        format: "mariadb-dump-sql",
        tool: MYSQL_DUMP_TOOL,
      },
    });
  } finally {
    await conn.dispose();
  }
}
