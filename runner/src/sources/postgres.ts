import { spawn } from "node:child_process";
import type { ArchiveEntry } from "../archive/types";
import type { DatabaseServerConfig } from "../inventory/config";
import { postgresConnection } from "./db-client";
import { dumpEntries } from "./dump-parts";
import { dbDir } from "./layout";

/** One PostgreSQL database in custom format (`pg_dump -Fc`), minus the data of excluded tables. */
export async function* postgresEntries(
  server: DatabaseServerConfig,
  domain: string,
  database: string,
  opts: { partSize?: number } = {},
): AsyncGenerator<ArchiveEntry> {
  const conn = await postgresConnection(server);
  try {
    const args = [...conn.args, "-Fc", `-Z${server.pgDumpCompression}`, "--no-password"];
    for (const p of server.excludeTableData) args.push(`--exclude-table-data=${p}`);
    args.push("-d", database);
    const child = spawn("pg_dump", args, { env: conn.env, stdio: ["ignore", "pipe", "pipe"] });
    yield* dumpEntries(child, `pg_dump ${server.name}/${database}`, {
      dir: dbDir(domain, "postgres", database),
      domain,
      partSize: opts.partSize,
      info: { engine: "postgres", database, server: server.name, format: "pg_dump-custom", tool: "pg_dump" },
    });
  } finally {
    await conn.dispose();
  }
}
