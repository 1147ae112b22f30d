import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import type { ArchiveEntry } from "../archive/types";
import { stderrTail, waitExit } from "./db-client";
import { HostingError } from "./errors";
import { dumpInfoName, dumpPartName, PART_SIZE, type DumpInfo } from "./layout";

export interface DumpTarget {
  dir: string;
  domain: string;
  info: Omit<DumpInfo, "parts" | "bytes" | "sha256" | "partSize" | "finishedAt">;
  partSize?: number;
}

/**
 * Turns a dump process's stdout into archive entries with no temporary file: tar needs each
 * entry's size up front, so stdout is cut into parts of at most `partSize` bytes held in memory
 * (`dump.part-000001`, ...). Reading runs ahead of the archive by at most two parts, then the pipe
 * is paused so the dump process blocks instead of memory growing. The final part and `dump.json` are emitted only after
 * the process exited 0: a failed or killed dump throws, and its parts carry no `dump.json`, which
 * restores require (never a silent truncated dump).
 */
export async function* dumpEntries(
  child: ChildProcess,
  what: string,
  t: DumpTarget,
): AsyncGenerator<ArchiveEntry> {
  const partSize = t.partSize ?? PART_SIZE;
  const tail = stderrTail(child);
  const exited = waitExit(child);
  // Keep the promise observed: a spawn error (ENOENT) is reported below, not as an unhandled rejection.
  exited.catch(() => {});
  const hash = createHash("sha256");
  const mtime = new Date();
  const tag = {
    component: "db",
    domain: t.domain,
    mode: 0o600,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    mtime,
  };
  let parts = 0;
  let bytes = 0;
  let done = false;
  // Read-ahead: the dump tool keeps writing while the archive works on the previous part (a blocked
  // pipe would stall it). Bounded: one part in the archive, at most two queued, one filling.
  const queue: Buffer[] = [];
  let buf = Buffer.allocUnsafe(partSize);
  let fill = 0;
  let ended = false;
  let readError: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  const out = child.stdout;
  try {
    if (!out) throw new HostingError("DUMP_FAILED", `${what}: no stdout`);
    out.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(chunk.length - off, partSize - fill);
        chunk.copy(buf, fill, off, off + n);
        fill += n;
        off += n;
        if (fill === partSize) {
          queue.push(buf);
          buf = Buffer.allocUnsafe(partSize);
          fill = 0;
        }
      }
      if (queue.length >= 2) out.pause();
      if (queue.length) notify();
    });
    out.once("end", () => {
      ended = true;
      notify();
    });
    out.once("error", (e: Error) => {
      readError = e;
      notify();
    });
    for (;;) {
      const next = queue.shift();
      if (next) {
        if (queue.length < 2 && out.isPaused()) out.resume();
        // A full part is not necessarily the last one, so it can go out before the exit status is known.
        yield {
          ...tag,
          name: dumpPartName(t.dir, ++parts),
          type: "file",
          size: next.length,
          body: { kind: "buffer", data: next },
        };
        continue;
      }
      if (readError)
        throw new HostingError("DUMP_FAILED", `${what}: reading output failed: ${readError.message}`);
      if (ended) break;
      await new Promise<void>((r) => (wake = r));
    }
    const { code, signal } = await exited.catch((e: Error) => {
      throw new HostingError("DUMP_FAILED", `${what}: cannot run: ${e.message}`, { cause: e });
    });
    if (code !== 0) {
      const why = tail() || "no error output";
      const unreachable = /can't connect|connection refused|could not connect|timeout expired/i.test(why);
      throw new HostingError(
        unreachable ? "DB_UNREACHABLE" : "DUMP_FAILED",
        `${what} ${signal ? `killed by ${signal}` : `exited ${code}`}: ${why}`,
      );
    }
    if (fill > 0 || parts === 0) {
      yield {
        ...tag,
        name: dumpPartName(t.dir, ++parts),
        type: "file",
        size: fill,
        body: { kind: "buffer", data: buf.subarray(0, fill) },
      };
    }
    const info: DumpInfo = {
      ...t.info,
      parts,
      bytes,
      sha256: hash.digest("hex"),
      partSize,
      finishedAt: new Date().toISOString(),
    };
    const data = Buffer.from(JSON.stringify(info, null, 2) + "\n");
    yield {
      ...tag,
      mode: 0o644,
      name: dumpInfoName(t.dir),
      type: "file",
      size: data.length,
      body: { kind: "buffer", data },
    };
    done = true;
  } finally {
    if (!done && child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  }
}
