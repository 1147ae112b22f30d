import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, renameSync, rmSync } from "node:fs";
import { createWriteStream } from "node:fs";
import { finished } from "node:stream/promises";
import { randomBytes } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { decryptArchive } from "../archive/index";
import { ArchiveError } from "../archive/errors";
import { fail, keyFromArgs, parse } from "../archive/cli-support";

export const usage =
  "cairn-runner decrypt ARCHIVE (--password-file F | --key-file F) (--out FILE.tar.zst | > FILE.tar.zst)";

/**
 * --out: written under a temporary name in the same directory and renamed into place only once every
 * segment has been authenticated, so FILE exists only when complete. Plain stdout output is valid
 * only when the exit code is 0; when stdout is a regular file, a failure truncates it back to its
 * size at the start (a cut .tar.zst still decompresses, and tar can take a cut stream for a whole one).
 */
export async function run(argv: string[]): Promise<number> {
  try {
    const { values: v, positionals } = parse(
      argv,
      { "password-file": { type: "string" }, "key-file": { type: "string" }, out: { type: "string" } },
      1,
    );
    if (positionals.length !== 1) throw new ArchiveError("USAGE", `usage: ${usage}`);
    const key = keyFromArgs(v);
    if (key.mode === "none") throw new ArchiveError("USAGE", "decrypt needs --password-file or --key-file");
    const source = resolve(positionals[0]!);
    if (v.out) {
      await decryptToFile(source, key, resolve(v.out));
      return 0;
    }
    if (process.stdout.isTTY)
      throw new ArchiveError(
        "USAGE",
        "refusing to write binary data to a terminal; redirect stdout to a file or use --out FILE",
      );
    let start = -1;
    try {
      const st = fstatSync(1);
      if (st.isFile()) start = st.size;
    } catch {
      /* not a file descriptor we can stat: a pipe's reader sees the non-zero exit */
    }
    try {
      await decryptArchive({ source, key, out: process.stdout });
      await new Promise<void>((res, rej) => process.stdout.write("", (err) => (err ? rej(err) : res())));
    } catch (err) {
      if (start >= 0) {
        try {
          ftruncateSync(1, start);
        } catch {
          /* best effort: the exit code still says the output is not valid */
        }
      }
      throw err;
    }
    return 0;
  } catch (err) {
    return fail(err);
  }
}

async function decryptToFile(
  source: string,
  key: ReturnType<typeof keyFromArgs>,
  dest: string,
): Promise<void> {
  const tmp = join(dirname(dest), `.${basename(dest)}.partial-${randomBytes(6).toString("hex")}`);
  // Plaintext of an encrypted archive: owner-only, like the key files it came from.
  const fd = openSync(tmp, "wx", 0o600);
  const out = createWriteStream("", { fd, autoClose: false });
  out.on("error", () => {}); // a write error (ENOSPC, ...) surfaces through finished() below
  try {
    await decryptArchive({ source, key, out });
    out.end();
    await finished(out);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, dest);
  } catch (err) {
    out.destroy();
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(tmp, { force: true });
    throw err;
  }
}
