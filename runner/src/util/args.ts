/**
 * Minimal `--flag value` / `--flag=value` / `--bool` parser for the runner's commands.
 * Unknown flags are an error: a typo must not silently fall back to a default.
 */
export class UsageError extends Error {
  readonly code = "USAGE";
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export interface FlagSpec {
  /** flags that take a value; repeatable ones collect every occurrence */
  values?: string[];
  booleans?: string[];
}

export interface ParsedArgs {
  values: Map<string, string[]>;
  booleans: Set<string>;
  positionals: string[];
}

export function parseArgs(argv: string[], spec: FlagSpec): ParsedArgs {
  const valueFlags = new Set(spec.values ?? []);
  const boolFlags = new Set(spec.booleans ?? []);
  const out: ParsedArgs = { values: new Map(), booleans: new Set(), positionals: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) {
      out.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (boolFlags.has(name) && eq === -1) {
      out.booleans.add(name);
      continue;
    }
    if (!valueFlags.has(name)) throw new UsageError(`unknown option --${name}`);
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[++i];
      if (value === undefined || value.startsWith("--")) throw new UsageError(`--${name} needs a value`);
    }
    const list = out.values.get(name) ?? [];
    list.push(value);
    out.values.set(name, list);
  }
  return out;
}

export function single(args: ParsedArgs, name: string): string | undefined {
  const v = args.values.get(name);
  if (!v) return undefined;
  if (v.length > 1) throw new UsageError(`--${name} given more than once`);
  return v[0];
}
