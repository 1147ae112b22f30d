import type { BackupKind } from "./jobs";

/** Backup names: what users type, made safe for every destination's object naming rules. */
export const BACKUP_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isValidBackupName(name: string): boolean {
  return BACKUP_NAME_PATTERN.test(name) && !name.includes("..");
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** `YYYYMMDD_HHMMSS` in UTC, so names sort by time whatever the server's time zone. */
export function formatBackupTimestamp(d: Date): string {
  return (
    `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}_` +
    `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`
  );
}

/** `<name>_<full|incr>_<YYYYMMDD_HHMMSS>.tar.zst[.enc]` */
export function archiveFileName(name: string, kind: BackupKind, at: Date, encrypted: boolean): string {
  if (!isValidBackupName(name)) throw new Error(`invalid backup name: ${JSON.stringify(name)}`);
  const k = kind === "full" ? "full" : "incr";
  return `${name}_${k}_${formatBackupTimestamp(at)}.tar.zst${encrypted ? ".enc" : ""}`;
}

export const ARCHIVE_FILE_PATTERN =
  /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})_(full|incr)_(\d{8}_\d{6})\.tar\.zst(\.enc)?$/;
