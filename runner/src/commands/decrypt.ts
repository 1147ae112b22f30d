import { resolve } from "node:path";
import { decryptArchive } from "../archive/index";
import { ArchiveError } from "../archive/errors";
import { fail, keyFromArgs, parse } from "../archive/cli-support";

export const usage = "cairn-runner decrypt ARCHIVE (--password-file F | --key-file F) > FILE.tar.zst";

export async function run(argv: string[]): Promise<number> {
  try {
    const { values: v, positionals } = parse(
      argv,
      { "password-file": { type: "string" }, "key-file": { type: "string" } },
      1,
    );
    if (positionals.length !== 1) throw new ArchiveError("USAGE", `usage: ${usage}`);
    const key = keyFromArgs(v);
    if (key.mode === "none") throw new ArchiveError("USAGE", "decrypt needs --password-file or --key-file");
    if (process.stdout.isTTY)
      throw new ArchiveError(
        "USAGE",
        "refusing to write binary data to a terminal; redirect stdout to a file",
      );
    await decryptArchive({ source: resolve(positionals[0]!), key, out: process.stdout });
    await new Promise<void>((res, rej) => process.stdout.write("", (err) => (err ? rej(err) : res())));
    return 0;
  } catch (err) {
    return fail(err);
  }
}
