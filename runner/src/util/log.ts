/**
 * One line per event on stderr: `[cairn-runner] level msg key=value`.
 * Fields whose name looks like a secret are redacted here, so a careless call site cannot leak one.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const SECRET_FIELD = /token|password|secret|key|authorization|jwk|passphrase/i;

function formatValue(v: string | number | boolean | null): string {
  const s = String(v);
  return /^[^\s"=]*$/.test(s) && s.length > 0 ? s : JSON.stringify(s);
}

export function formatLine(level: LogLevel, msg: string, fields: LogFields = {}): string {
  const parts = [`[cairn-runner] ${level} ${msg.replace(/[\r\n]+/g, " ")}`];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    parts.push(`${k}=${SECRET_FIELD.test(k) ? "[redacted]" : formatValue(v)}`);
  }
  return parts.join(" ");
}

export function createLogger(opts: { sink?: (line: string) => void; debug?: boolean } = {}): Logger {
  const sink = opts.sink ?? ((line: string) => process.stderr.write(line + "\n"));
  const emit = (level: LogLevel) => (msg: string, fields?: LogFields) => {
    if (level === "debug" && !opts.debug) return;
    sink(formatLine(level, msg, fields));
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

/** For tests and library use: records lines instead of printing them. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger({ sink: (l) => lines.push(l), debug: true }), { lines });
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
