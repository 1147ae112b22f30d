import { readFile } from "node:fs/promises";
import { defaultConfigPath } from "../config";
import { enrollRunner } from "../enroll";
import { parseArgs, single, UsageError } from "../util/args";
import { createLogger } from "../util/log";

export const usage = `cairn-runner enroll --url URL (--token TOKEN | --token-file FILE | $CAIRN_ENROLL_TOKEN)
    [--config PATH] [--name NAME] [--backup-dir DIR] [--state-dir DIR]
    [--source DIR ... | --sources a,b] [--allowed-root DIR ...]
    [--hosting-root DIR] [--hosting-config FILE]`;

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, {
    values: [
      "url",
      "token",
      "token-file",
      "config",
      "name",
      "backup-dir",
      "state-dir",
      "source",
      "sources",
      "allowed-root",
      "hosting-root",
      "hosting-config",
    ],
  });
  if (args.positionals.length) throw new UsageError(`unexpected argument ${args.positionals[0]}`);
  const url = single(args, "url");
  if (!url) throw new UsageError("--url is required");
  const tokenFile = single(args, "token-file");
  // --token-file and the env var keep the token out of `ps` and shell history.
  const token =
    single(args, "token") ??
    (tokenFile ? (await readFile(tokenFile, "utf8")).trim() : process.env.CAIRN_ENROLL_TOKEN);
  if (!token)
    throw new UsageError("an enrollment token is required (--token, --token-file or CAIRN_ENROLL_TOKEN)");
  const sources = [
    ...(args.values.get("source") ?? []),
    ...(args.values.get("sources") ?? []).flatMap((s) => s.split(",")).filter(Boolean),
  ];
  const configPath = single(args, "config") ?? defaultConfigPath();
  const config = await enrollRunner({
    url,
    token,
    configPath,
    name: single(args, "name"),
    backupDir: single(args, "backup-dir"),
    stateDir: single(args, "state-dir"),
    sources,
    allowedRoots: args.values.get("allowed-root"),
    hosting: { root: single(args, "hosting-root"), configPath: single(args, "hosting-config") },
  });
  createLogger().info("enrolled", {
    runnerId: config.runnerId,
    tenantId: config.tenantId,
    config: configPath,
    keys: config.jwks.keys.length,
  });
  return 0;
}
