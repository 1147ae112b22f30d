/**
 * Writes the staging tree from a worker thread. The main thread parses and checks; every
 * file-system change inside the staging directory (mkdir, open, write, chmod/chown/utimes, close,
 * symlink, link) is queued as an op and run by one worker in queue order, so a file's writes stay in
 * order and a link or child never runs before what it needs. The worker also hashes each file's
 * bytes as it writes them and fails on a SHA-256 other than the manifest's (on the main thread the
 * hashing was a third of its time), except for files opened while it is behind: the main thread,
 * which would otherwise wait, hashes those itself. One message per decompressed frame:
 * per-file libuv requests cost more main-thread time than the syscalls they replace (47k files/GiB).
 * Memory is bounded: at most `maxBatches` batches (each about one frame of body bytes) in flight.
 */
import { Worker } from "node:worker_threads";
import { relative } from "node:path";
import { corrupt, unsafe } from "../archive/errors";

// Plain JS evaluated in the worker, so it runs the same under tsx, vitest and a build (no loader).
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const { createHash } = require("node:crypto");
const FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
const stopped = new Int32Array(workerData.stop);
let fd = -1;
let hash = null;
let want = "";
let path = "";
const closeFd = () => {
  if (fd >= 0) {
    try { fs.closeSync(fd); } catch {}
    fd = -1;
  }
};
parentPort.on("message", (m) => {
  if (m.exit) {
    closeFd();
    parentPort.close();
    return;
  }
  if (Atomics.load(stopped, 0)) return;
  const data = m.buf ? Buffer.from(m.buf, 0, m.len) : null;
  let pos = 0;
  try {
    for (const op of JSON.parse(m.ops)) {
      if (Atomics.load(stopped, 0)) break;
      switch (op[0]) {
        case "o":
          fd = fs.openSync(op[1], FLAGS, op[2]);
          path = op[1];
          want = op[3];
          hash = want === null ? null : createHash("sha256");
          break;
        case "w": {
          let len = op[1];
          let off = pos;
          if (hash) hash.update(data.subarray(off, off + len));
          while (len > 0) {
            const n = fs.writeSync(fd, data, off, len);
            off += n;
            len -= n;
          }
          pos += op[1];
          break;
        }
        case "c":
          if (hash && hash.digest("hex") !== want)
            throw Object.assign(new Error("content does not match the manifest"), { code: "BAD_CONTENT", path });
          hash = null;
          if (op[1] >= 0) fs.fchmodSync(fd, op[1]);
          if (op[2] >= 0) fs.fchownSync(fd, op[2], op[3]);
          fs.futimesSync(fd, op[4], op[4]);
          fs.closeSync(fd);
          fd = -1;
          break;
        case "p":
          fs.mkdirSync(op[1], { recursive: true, mode: 0o700 });
          break;
        case "d":
          fs.mkdirSync(op[1], { mode: 0o700 });
          break;
        case "s":
          fs.symlinkSync(op[1], op[2]);
          if (op[3] >= 0) fs.lchownSync(op[2], op[3], op[4]);
          fs.lutimesSync(op[2], op[5], op[5]);
          break;
        case "l": {
          let st = null;
          try {
            st = fs.lstatSync(op[1]);
          } catch {}
          if (!st || !st.isFile())
            throw Object.assign(new Error("hardlink target is not a regular file"), { code: "NOT_FILE", path: op[2] });
          fs.linkSync(op[1], op[2]);
          break;
        }
        default:
          throw new Error("unknown staging op " + op[0]);
      }
    }
    // The buffer goes back for reuse: left here, it would wait for this thread's rare GCs.
    parentPort.postMessage({ seq: m.seq, buf: m.buf }, m.buf ? [m.buf] : []);
  } catch (err) {
    closeFd();
    Atomics.store(stopped, 0, 1);
    parentPort.postMessage({
      seq: m.seq,
      error: { message: err.message, code: err.code, syscall: err.syscall, path: err.path },
    });
  }
});
`;

type Op = (string | number | null)[];
type WorkerError = { message: string; code?: string; syscall?: string; path?: string };

/** Owner to set (root with --preserve-owner), or none. */
export type Owner = { uid: number; gid: number } | null;

export class StageWriter {
  private readonly worker: Worker;
  private readonly stopFlag = new Int32Array(new SharedArrayBuffer(4));
  private ops: Op[] = [];
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  private seq = 0;
  private inFlight = 0;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  /** Batch buffers back from the worker, reused (allocating one per frame made RSS grow by ~100 MiB). */
  private free: ArrayBuffer[] = [];
  private readonly exited: Promise<void>;

  constructor(
    /** the staging directory: error messages name entries relative to it */
    private readonly stage: string,
    private readonly maxBatches = 4,
  ) {
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { stop: this.stopFlag.buffer },
      // The worker only holds one batch's ops at a time; V8's default young generation (up to
      // 3 x 16 MiB) would let its garbage grow the restore's RSS for nothing.
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 },
    });
    this.exited = new Promise((res) => this.worker.once("exit", () => res()));
    this.worker.on("message", (m: { seq: number; buf?: ArrayBuffer; error?: WorkerError }) => {
      this.inFlight--;
      if (m.buf) this.free.push(m.buf);
      if (m.error) this.failure ??= this.describe(m.error);
      this.notify();
    });
    this.worker.on("error", (err) => {
      this.failure ??= err;
      this.notify();
    });
    void this.exited.then(() => {
      this.failure ??= new Error("staging writer stopped unexpectedly");
      this.notify();
    });
  }

  /**
   * The staging tree starts empty and only this restore writes it, so EEXIST means the archive
   * lists a path twice, ENOTDIR a path below a file, NOT_FILE a hardlink to something that is not
   * a regular file restored earlier: all hostile or broken archives (UNSAFE_ENTRY).
   */
  private describe(e: WorkerError): Error {
    const entry = e.path ? relative(this.stage, e.path) : "?";
    if (e.code === "EEXIST")
      return unsafe(`entry ${entry} appears twice in the archive (or after an entry below it)`);
    if (e.code === "ENOTDIR") return unsafe(`entry ${entry} would be written below a file`);
    if (e.code === "NOT_FILE")
      return unsafe(`hardlink ${entry}: target is not a regular file restored earlier from this archive`);
    if (e.code === "BAD_CONTENT") return corrupt(`content of ${entry} does not match the manifest`);
    return Object.assign(new Error(e.message), { code: e.code });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  mkdirp(path: string): void {
    this.ops.push(["p", path]);
  }
  mkdir(path: string): void {
    this.ops.push(["d", path]);
  }
  symlink(target: string, path: string, owner: Owner, mtime: number): void {
    this.ops.push(["s", target, path, owner?.uid ?? -1, owner?.gid ?? -1, mtime]);
  }
  link(existing: string, path: string): void {
    this.ops.push(["l", existing, path]);
  }
  /**
   * Creates the file with `mode` (the process umask applies, as for any open). Its close fails
   * (CORRUPT) unless the bytes written hash to `sha256` (hex); null: the caller checks them.
   */
  open(path: string, mode: number, sha256: string | null): void {
    this.ops.push(["o", path, mode, sha256]);
  }
  /** Appends to the open file. The bytes are copied at the next flush (the caller may reuse them after). */
  write(b: Buffer): void {
    if (b.length === 0) return;
    const last = this.ops[this.ops.length - 1];
    if (last?.[0] === "w") (last[1] as number) += b.length;
    else this.ops.push(["w", b.length]);
    this.chunks.push(b);
    this.chunkBytes += b.length;
  }
  /** Finishes the open file: chmod (when `chmod` >= 0), chown, mtime, close. */
  close(chmod: number, owner: Owner, mtime: number): void {
    this.ops.push(["c", chmod, owner?.uid ?? -1, owner?.gid ?? -1, mtime]);
  }

  /**
   * True while the worker has fallen behind (the batch being written and two more waiting): the
   * main thread then has time to hash files itself instead of queueing that work too.
   */
  get behind(): boolean {
    return this.inFlight >= this.maxBatches - 1;
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  /** Hands the queued ops to the worker; waits while too many batches are in flight. */
  async flush(): Promise<void> {
    this.check();
    if (this.ops.length) {
      let buf: ArrayBuffer | null = null;
      if (this.chunkBytes) {
        // One copy into a transferable buffer; the frames the chunks point into can then go.
        const i = this.free.findIndex((b) => b.byteLength >= this.chunkBytes);
        buf =
          i >= 0
            ? this.free.splice(i, 1)[0]!
            : new ArrayBuffer(Math.ceil(this.chunkBytes / 2 ** 20) * 2 ** 20);
        const u = new Uint8Array(buf);
        let o = 0;
        for (const c of this.chunks) {
          u.set(c, o);
          o += c.length;
        }
      }
      this.worker.postMessage(
        // One JSON string: structured-cloning ~150 small arrays per batch cost ~0.7 ms per frame.
        { seq: this.seq++, ops: JSON.stringify(this.ops), buf, len: this.chunkBytes },
        buf ? [buf] : [],
      );
      this.inFlight++;
      this.ops = [];
      this.chunks = [];
      this.chunkBytes = 0;
    }
    while (this.inFlight >= this.maxBatches && !this.failure) await new Promise<void>((r) => (this.wake = r));
    this.check();
  }

  /** Flushes and waits until the worker has run every op; throws the first failure. */
  async finish(): Promise<void> {
    await this.flush();
    while (this.inFlight > 0 && !this.failure) await new Promise<void>((r) => (this.wake = r));
    this.check();
    await this.shutdown();
  }

  /** Stops the worker (skipping queued ops) and waits until it has closed its file and exited. */
  async abort(): Promise<void> {
    Atomics.store(this.stopFlag, 0, 1);
    await this.shutdown();
  }

  private async shutdown(): Promise<void> {
    this.failure ??= new Error("staging writer closed");
    this.worker.postMessage({ exit: true });
    await this.exited;
  }
}
