import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export const pg = (sql: string, db = "postgres") =>
  execFileSync(
    "psql",
    ["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-AtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
    { encoding: "utf8" },
  ).trim();
export const my = (sql: string, db?: string) =>
  execFileSync(
    "mariadb",
    [
      "-h",
      "127.0.0.1",
      "-uroot",
      "--batch",
      "--skip-column-names",
      ...(db ? [`--database=${db}`] : []),
      "-e",
      sql,
    ],
    { encoding: "utf8" },
  ).trim();

/** Drops the PostgreSQL databases whose names start with `tag` (one test's own: the server is shared). */
export function dropPgDatabases(tag: string): void {
  for (const db of pg(`SELECT datname FROM pg_database WHERE datname LIKE '${tag}%'`)
    .split("\n")
    .filter(Boolean))
    pg(`DROP DATABASE "${db}" WITH (FORCE)`);
}

/** Drops the MariaDB databases whose names start with `tag` (one test's own: the server is shared). */
export function dropMyDatabases(tag: string): void {
  for (const db of my(`SHOW DATABASES LIKE '${tag}%'`).split("\n").filter(Boolean))
    my(`DROP DATABASE \`${db}\``);
}

/** sha256 over every file's relative path, mode and bytes, in sorted order. */
export function treeDigest(root: string): string {
  const h = createHash("sha256");
  const walk = (dir: string, rel: string) => {
    for (const n of readdirSync(dir).sort()) {
      const abs = join(dir, n);
      const st = statSync(abs);
      const r = rel ? `${rel}/${n}` : n;
      if (st.isDirectory()) walk(abs, r);
      else h.update(`${r}\0${(st.mode & 0o777).toString(8)}\0`).update(readFileSync(abs));
    }
  };
  walk(root, "");
  return h.digest("hex");
}
