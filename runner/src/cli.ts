import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { errorMessage } from "./util/log";

/**
 * `cairn-runner <command> [options]`: a dispatcher only. Each command lives in
 * `./commands/<name>.ts` and exports `run(argv): Promise<number>` (a default export or `main` works too).
 * Archive commands work without any control plane: a disaster must not depend on it being up.
 */

export const COMMANDS = {
  enroll: "register this server with a control plane and write its config",
  start: "run the daemon (connects to the control plane and runs jobs)",
  backup: "write an archive locally, no control plane needed",
  restore: "restore an archive",
  verify: "check an archive end to end",
  inspect: "show an archive's header and manifest",
  decrypt: "decrypt an archive to a plain .tar.zst",
  inventory: "list the domains, databases and components found on this host",
} as const;
export type CommandName = keyof typeof COMMANDS;

type CommandFn = (argv: string[]) => Promise<number | void> | number | void;

function helpText(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    "usage: cairn-runner <command> [options]",
    "",
    ...Object.entries(COMMANDS).map(([c, d]) => `  ${c.padEnd(width)}  ${d}`),
    "",
    "cairn-runner <command> --help for a command's options",
  ].join("\n");
}

const commandsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "commands");

async function loadCommand(name: CommandName): Promise<{ fn: CommandFn; usage?: string } | undefined> {
  if (!existsSync(path.join(commandsDir, `${name}.ts`)) && !existsSync(path.join(commandsDir, `${name}.js`)))
    return undefined;
  const mod = (await import(`./commands/${name}`)) as Record<string, unknown>;
  const fn = [mod.run, mod.main, mod.default].find((f): f is CommandFn => typeof f === "function");
  return fn ? { fn, usage: typeof mod.usage === "string" ? mod.usage : undefined } : undefined;
}

/** Returns the process exit code: 0 ok, 1 failure, 2 usage. Errors print one line: `CODE message`. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(helpText() + "\n");
    return name ? 0 : 2;
  }
  if (!(name in COMMANDS)) {
    process.stderr.write(`USAGE unknown command ${JSON.stringify(name)}\n${helpText()}\n`);
    return 2;
  }
  const cmd = await loadCommand(name as CommandName);
  if (!cmd) {
    process.stderr.write(`USAGE command ${name} is not available in this build\n`);
    return 2;
  }
  if (cmd.usage && (rest.includes("--help") || rest.includes("-h"))) {
    process.stdout.write(cmd.usage + "\n");
    return 0;
  }
  try {
    const code = await cmd.fn(rest);
    return typeof code === "number" ? code : 0;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const label = typeof code === "string" && /^[A-Z_]+$/.test(code) ? code : "ERROR";
    process.stderr.write(`${label} ${errorMessage(err)}\n`);
    return label === "USAGE" ? 2 : 1;
  }
}
