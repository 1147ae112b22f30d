import { defaultConfigPath, loadConfig } from "../config";
import { RunnerDaemon } from "../daemon/daemon";
import { productionHandlers } from "../jobs/handlers";
import { parseArgs, single, UsageError } from "../util/args";
import { createLogger } from "../util/log";

export const usage = "cairn-runner start [--config PATH] [--debug]";

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { values: ["config"], booleans: ["debug"] });
  if (args.positionals.length) throw new UsageError(`unexpected argument ${args.positionals[0]}`);
  const log = createLogger({ debug: args.booleans.has("debug") || process.env.CAIRN_DEBUG === "1" });
  const file = single(args, "config") ?? defaultConfigPath();
  const { config, insecureMode } = await loadConfig(file);
  if (insecureMode !== undefined) {
    log.warn("config file is readable by group or others; it holds private keys (chmod 600 it)", {
      config: file,
      mode: insecureMode.toString(8),
    });
  }
  // A stray rejection must not take the daemon (and its running jobs) down silently.
  process.on("unhandledRejection", (err) =>
    log.error("unhandled rejection", { error: err instanceof Error ? err.message : String(err) }),
  );
  const daemon = new RunnerDaemon({ config, handlers: productionHandlers(), log });
  const stopped = new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      log.info("signal received", { signal: sig });
      void daemon.stop().then(resolve);
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  });
  await daemon.start();
  await stopped;
  return 0;
}
