import { Transform, type TransformCallback } from "node:stream";
import { HostingError } from "../sources/errors";

/**
 * Refuses SQL dumps that carry mariadb/mysql *client* commands. The client runs with `--sandbox`
 * (no `\!`/`system`, no file access), and this filter is the second wall that also covers what the
 * sandbox allows but a restore must not: switching database or server (`use`, `connect`), ending
 * early so a truncated restore looks successful (`exit`, `quit`), discarding statements (`clear`).
 *
 * It follows the client's own lexing: a backslash command is live outside quoted strings (also
 * inside versioned comments); a named command is live as the first word of a line. Only `\-`
 * (enable sandbox, which mariadb-dump writes on line 1) is let through. Lines are checked as the
 * stream passes, so nothing is buffered beyond one line.
 */
const NAMED = new Set([
  "system",
  "source",
  "tee",
  "notee",
  "pager",
  "nopager",
  "edit",
  "connect",
  "use",
  "exit",
  "quit",
  "clear",
  "sandbox",
]);
const MAX_LINE = 64 * 1024 * 1024;

type State = "normal" | "squote" | "dquote" | "backtick" | "comment";

export class SqlClientCommandGuard extends Transform {
  private state: State = "normal";
  private carry = "";
  private lineNo = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      // latin1 keeps one char per byte: the scan only looks at ASCII, and the bytes pass unchanged.
      const text = this.carry + chunk.toString("latin1");
      const lastNl = text.lastIndexOf("\n");
      if (lastNl < 0) {
        this.carry = text;
        if (this.carry.length > MAX_LINE)
          throw new HostingError("UNSAFE_DUMP", `line ${this.lineNo + 1} longer than ${MAX_LINE} bytes`);
        return cb();
      }
      for (const line of text.slice(0, lastNl).split("\n")) this.checkLine(line);
      this.carry = text.slice(lastNl + 1);
      // Only checked, complete lines go on: the client must never see the start of a line we may refuse.
      cb(null, Buffer.from(text.slice(0, lastNl + 1), "latin1"));
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (this.carry) this.checkLine(this.carry);
      cb(null, this.carry ? Buffer.from(this.carry, "latin1") : undefined);
    } catch (e) {
      cb(e as Error);
    }
  }

  private refuse(why: string): never {
    throw new HostingError("UNSAFE_DUMP", `dump refused at line ${this.lineNo}: ${why}`);
  }

  private checkLine(line: string): void {
    this.lineNo++;
    if (this.state === "normal") {
      const m = /^\s*([A-Za-z]+)(\s|;|$)/.exec(line);
      if (m && NAMED.has(m[1]!.toLowerCase())) this.refuse(`client command "${m[1]}"`);
    }
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      switch (this.state) {
        case "normal":
          if (c === "'") this.state = "squote";
          else if (c === '"') this.state = "dquote";
          else if (c === "`") this.state = "backtick";
          else if (
            c === "#" ||
            (c === "-" && line[i + 1] === "-" && (line[i + 2] === undefined || /\s/.test(line[i + 2]!)))
          )
            i = line.length;
          else if (c === "/" && line[i + 1] === "*") {
            // Versioned comments (/*! ... */, /*M! ... */) are executed by the server: scan them as SQL.
            if (line[i + 2] === "!" || (line[i + 2] === "M" && line[i + 3] === "!"))
              i += line[i + 2] === "!" ? 2 : 3;
            else {
              this.state = "comment";
              i++;
            }
          } else if (c === "\\") {
            if (line[i + 1] !== "-") this.refuse(`client command "\\${line[i + 1] ?? ""}"`);
            i++;
          }
          break;
        case "squote":
        case "dquote":
          if (c === "\\") i++;
          else if ((c === "'" && this.state === "squote") || (c === '"' && this.state === "dquote"))
            this.state = "normal";
          break;
        case "backtick":
          if (c === "`") this.state = "normal";
          break;
        case "comment":
          if (c === "*" && line[i + 1] === "/") {
            this.state = "normal";
            i++;
          }
          break;
      }
    }
  }
}
