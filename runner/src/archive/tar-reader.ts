/**
 * A synchronous tar parser (ustar, pax 'x'/'g', GNU 'L'/'K'), fed decompressed frames in order.
 * Synchronous on purpose: per-entry promise hops cost more than the writes for small files.
 */
import { corrupt } from "./errors";

export interface TarEntryHeader {
  name: string;
  /** tar typeflag character ('0' file, '1' hardlink, '2' symlink, '5' directory, ...) */
  typeflag: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string;
}

export interface TarBodySink {
  write(b: Buffer): void;
  end(): void;
}

const ZERO_BLOCK = Buffer.alloc(512);
const MAX_META = 1024 * 1024;

function cstr(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString("utf8", off, end === -1 || end > off + len ? off + len : end);
}

const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);

function octal(b: Buffer, off: number, len: number): number {
  if (b[off]! & 0x80) {
    // GNU base-256: only positive values that fit a safe integer
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + b[i]!;
    if (!Number.isSafeInteger(v)) throw corrupt("tar numeric field too large");
    return v;
  }
  // The usual field, parsed from the bytes (six per header, ~50k headers per GiB): ASCII spaces,
  // octal digits, ASCII spaces, then NUL or the field's end. Anything else takes the string path.
  const end = off + len;
  let i = off;
  while (i < end && isSpace(b[i]!)) i++;
  let v = 0;
  let digits = 0;
  for (; i < end; i++, digits++) {
    const c = b[i]!;
    if (c < 0x30 || c > 0x37) break;
    v = v * 8 + (c - 0x30);
  }
  while (i < end && isSpace(b[i]!)) i++;
  if (i === end || b[i] === 0) return digits ? v : 0;
  return octalText(b, off, len);
}

function octalText(b: Buffer, off: number, len: number): number {
  const s = cstr(b, off, len).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw corrupt(`tar numeric field is not octal: ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function checksumOk(b: Buffer): boolean {
  // The checksum field itself counts as eight spaces.
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += b[i]!;
  for (let i = 156; i < 512; i++) sum += b[i]!;
  return sum === octal(b, 148, 8);
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp === -1) break;
    const len = Number(data.toString("ascii", pos, sp));
    if (!Number.isInteger(len) || len <= 0 || pos + len > data.length) throw corrupt("malformed pax record");
    const rec = data.toString("utf8", sp + 1, pos + len - 1);
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    pos += len;
  }
  return out;
}

type State = "header" | "meta" | "body" | "pad" | "end";

export class TarReader {
  private state: State = "header";
  private partial: Buffer[] = [];
  private partialLen = 0;
  private remaining = 0;
  private pad = 0;
  private metaType = "";
  private pax: Record<string, string> = {};
  private longName: string | null = null;
  private longLink: string | null = null;
  private sink: TarBodySink | null = null;

  constructor(private readonly onEntry: (h: TarEntryHeader) => TarBodySink) {}

  /** Takes exactly n bytes from buf at pos (buffering across calls); null when not enough yet. */
  private take(buf: Buffer, pos: { p: number }, n: number): Buffer | null {
    const need = n - this.partialLen;
    const avail = buf.length - pos.p;
    if (avail < need) {
      // A copy: the caller may reuse `buf` once push returns (transient decompression slots).
      this.partial.push(Buffer.from(buf.subarray(pos.p)));
      this.partialLen += avail;
      pos.p = buf.length;
      return null;
    }
    const piece = buf.subarray(pos.p, pos.p + need);
    pos.p += need;
    if (this.partialLen === 0) return piece;
    const whole = Buffer.concat([...this.partial, piece]);
    this.partial = [];
    this.partialLen = 0;
    return whole;
  }

  push(buf: Buffer): void {
    const pos = { p: 0 };
    while (pos.p < buf.length) {
      if (this.state === "body") {
        const n = Math.min(this.remaining, buf.length - pos.p);
        this.sink!.write(buf.subarray(pos.p, pos.p + n));
        pos.p += n;
        this.remaining -= n;
        if (this.remaining === 0) {
          this.sink!.end();
          this.sink = null;
          this.state = this.pad ? "pad" : "header";
        }
      } else if (this.state === "pad") {
        const n = Math.min(this.pad, buf.length - pos.p);
        pos.p += n;
        this.pad -= n;
        if (this.pad === 0) this.state = "header";
      } else if (this.state === "meta") {
        const data = this.take(buf, pos, this.remaining);
        if (!data) continue;
        if (this.metaType === "x") this.pax = { ...this.pax, ...parsePax(data) };
        else if (this.metaType === "L") this.longName = cstr(data, 0, data.length);
        else if (this.metaType === "K") this.longLink = cstr(data, 0, data.length);
        this.state = this.pad ? "pad" : "header";
      } else if (this.state === "end") {
        // After the end marker only zero padding may follow.
        const rest = buf.subarray(pos.p);
        if (rest.some((x) => x !== 0)) throw corrupt("data after the tar end marker");
        pos.p = buf.length;
      } else {
        const h = this.take(buf, pos, 512);
        if (!h) continue;
        this.header(h);
      }
    }
  }

  private header(h: Buffer): void {
    if (h.equals(ZERO_BLOCK)) {
      this.state = "end";
      return;
    }
    if (!checksumOk(h)) throw corrupt("tar header checksum mismatch");
    const typeflag = h[156] === 0 ? "0" : String.fromCharCode(h[156]!);
    let size = octal(h, 124, 12);
    if (typeflag === "x" || typeflag === "g" || typeflag === "L" || typeflag === "K") {
      if (size > MAX_META) throw corrupt("tar metadata record too large");
      this.metaType = typeflag;
      this.remaining = size;
      this.pad = (512 - (size % 512)) % 512;
      this.state = size ? "meta" : "header";
      if (!size && typeflag !== "g") this.metaType = "";
      return;
    }
    const prefix = h.subarray(257, 263).toString("binary") === "ustar\x00" ? cstr(h, 345, 155) : "";
    let name = this.pax.path ?? this.longName ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
    const linkname = this.pax.linkpath ?? this.longLink ?? cstr(h, 157, 100);
    if (this.pax.size !== undefined) {
      size = Number(this.pax.size);
      if (!Number.isSafeInteger(size) || size < 0) throw corrupt("bad pax size");
    }
    const uid = this.pax.uid !== undefined ? Number(this.pax.uid) : octal(h, 108, 8);
    const gid = this.pax.gid !== undefined ? Number(this.pax.gid) : octal(h, 116, 8);
    const mtime = this.pax.mtime !== undefined ? Math.floor(Number(this.pax.mtime)) : octal(h, 136, 12);
    this.pax = {};
    this.longName = this.longLink = null;
    if (typeflag === "5") name = name.replace(/\/+$/, "");
    // Only regular files carry a body (hardlinks, symlinks, dirs, devices: size is ignored as in GNU tar).
    const bodySize = typeflag === "0" || typeflag === "7" ? size : 0;
    const entry: TarEntryHeader = {
      name,
      typeflag,
      size: bodySize,
      mode: octal(h, 100, 8),
      uid,
      gid,
      mtime,
      linkname,
    };
    this.sink = this.onEntry(entry);
    this.remaining = bodySize;
    this.pad = (512 - (bodySize % 512)) % 512;
    if (bodySize === 0) {
      this.sink.end();
      this.sink = null;
      this.state = "header";
    } else this.state = "body";
  }

  /** Call when the input is complete: anything but a clean end is CORRUPT/TRUNCATED. */
  finish(): void {
    if (this.state === "end") return;
    if (this.state === "header" && this.partialLen === 0) throw corrupt("tar stream has no end marker");
    throw corrupt("tar stream ends inside an entry");
  }
}
