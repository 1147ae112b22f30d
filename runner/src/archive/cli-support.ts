/** Shared by the archive CLI commands: argument parsing, key files, progress output, error line. */
import { readFileSync } from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";
import type { DecryptionKey, Progress } from "./types";
import { ArchiveError, toArchiveError } from "./errors";

export function parse<T extends NonNullable<ParseArgsConfig["options"]>>(
  argv: string[],
  options: T,
  positionals = 0,
) {
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: positionals > 0, strict: true });
    if (r.positionals.length > positionals)
      throw new Error(`unexpected argument ${r.positionals[positionals]}`);
    return r;
  } catch (err) {
    throw new ArchiveError("USAGE", (err as Error).message);
  }
}

/** Reads a password file: the first line, without its newline. The password is never echoed. */
export function readPasswordFile(path: string): string {
  let raw: string;
  try {
    raw = readFileSync(path, "utf8");
  } catch (err) {
    throw new ArchiveError(
      "NOT_FOUND",
      `cannot read password file ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
    );
  }
  const pw = raw.split(/\r?\n/)[0] ?? "";
  if (!pw) throw new ArchiveError("USAGE", `password file ${path} is empty`);
  return pw;
}

/** --password-file or --key-file (base64 32-byte panel data key); none otherwise. */
export function keyFromArgs(v: { "password-file"?: string; "key-file"?: string }): DecryptionKey {
  if (v["password-file"]) return { mode: "password", password: readPasswordFile(v["password-file"]) };
  if (v["key-file"]) {
    const k = Buffer.from(readFileSync(v["key-file"], "utf8").trim(), "base64");
    if (k.length !== 32) throw new ArchiveError("USAGE", "key file must hold a base64 32-byte data key");
    return { mode: "panel", dataKey: k };
  }
  return { mode: "none" };
}

const fmt = (n: number) =>
  n >= 1 << 30
    ? `${(n / 2 ** 30).toFixed(2)} GiB`
    : n >= 1 << 20
      ? `${(n / 2 ** 20).toFixed(1)} MiB`
      : `${(n / 1024).toFixed(0)} KiB`;

/** A bar on a TTY (bytes, rate, ETA), plain lines otherwise, nothing with --json. */
export function progressReporter(json: boolean): ((p: Progress) => void) | undefined {
  if (json) return undefined;
  const tty = process.stderr.isTTY === true;
  const start = Date.now();
  let lastLine = 0;
  return (p) => {
    const secs = Math.max(0.001, (Date.now() - start) / 1000);
    const rate = p.bytes / secs;
    if (tty) {
      const frac = p.totalBytes ? Math.min(1, p.bytes / p.totalBytes) : 0;
      const eta =
        p.totalBytes && rate > 0 ? `${Math.max(0, (p.totalBytes - p.bytes) / rate).toFixed(0)}s` : "?";
      const bar = p.totalBytes ? `[${"#".repeat(Math.round(frac * 30)).padEnd(30, ".")}] ` : "";
      process.stderr.write(
        `\r${bar}${fmt(p.bytes)} ${fmt(rate)}/s ETA ${eta} ${p.phase === "done" ? "\n" : ""}`,
      );
    } else if (p.phase === "done" || Date.now() - lastLine > 2000) {
      lastLine = Date.now();
      process.stderr.write(
        `${p.phase ?? "progress"} ${p.bytes} bytes ${p.files} files ${Math.round(rate)} B/s\n`,
      );
    }
  };
}

/** Prints the one error line (`CODE message`) and returns the exit code. */
export function fail(err: unknown): number {
  const e = toArchiveError(err);
  process.stderr.write(`${e.code} ${e.message.replace(/\s+/g, " ")}\n`);
  return e.code === "USAGE" ? 2 : 1;
}

export function out(json: boolean, obj: unknown, text: string): void {
  process.stdout.write(json ? JSON.stringify(obj) + "\n" : text + "\n");
}
