/**
 * Writes POSIX ustar headers, with a pax extended header ('x') whenever a field does not fit
 * (long or non-ASCII names/link targets, sizes >= 8 GiB, large ids), so GNU tar and bsdtar read it.
 */
export type TarType = "file" | "directory" | "symlink" | "hardlink";

export interface TarHeaderFields {
  name: string;
  type: TarType;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number; // seconds
  linkname?: string;
}

export const TAR_BLOCK = 512;
const TYPEFLAG: Record<TarType, number> = { file: 0x30, hardlink: 0x31, symlink: 0x32, directory: 0x35 };
const PAX_TYPEFLAG = 0x78; // 'x'
const MAX_OCTAL_11 = 8 ** 11 - 1;
const MAX_OCTAL_7 = 8 ** 7 - 1;
const MAGIC = Buffer.from("ustar\x0000", "latin1");
const SPACE = 0x20;

/**
 * Zero-padded octal digits and a NUL, written as bytes: the header of every one of ~50k entries is
 * built on the tar worker's critical path, where number-to-string conversions showed in profiles.
 */
function writeOctal(buf: Buffer, value: number, offset: number, width: number): void {
  let v = Math.floor(value);
  buf[offset + width - 1] = 0;
  if (!(v >= 0)) {
    // negative or NaN: the bytes the string form always gave
    const s = v.toString(8).padStart(width - 1, "0");
    buf.write(s.slice(0, width - 1), offset, "latin1");
    return;
  }
  for (let i = offset + width - 2; i >= offset; i--) {
    buf[i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
}

function isPlainAscii(s: string): boolean {
  return /^[\x20-\x7e]*$/.test(s);
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + String(bodyLen).length;
  if (String(len).length !== String(len - bodyLen).length) len = bodyLen + String(len).length;
  return `${len}${body}`;
}

/** One ustar block at b[at..at+512); `name` and `linkname` are plain ASCII (cut to 100 here). */
function ustar(
  b: Buffer,
  at: number,
  f: TarHeaderFields,
  name: string,
  linkname: string,
  typeflag: number,
  size: number,
): void {
  b.fill(0, at, at + TAR_BLOCK);
  b.write(name.length > 100 ? name.slice(0, 100) : name, at, "latin1");
  writeOctal(b, f.mode & 0o7777, at + 100, 8);
  writeOctal(b, Math.min(f.uid, MAX_OCTAL_7), at + 108, 8);
  writeOctal(b, Math.min(f.gid, MAX_OCTAL_7), at + 116, 8);
  writeOctal(b, Math.min(size, MAX_OCTAL_11), at + 124, 12);
  writeOctal(b, Math.min(Math.max(0, f.mtime), MAX_OCTAL_11), at + 136, 12);
  b[at + 156] = typeflag;
  if (linkname) b.write(linkname.length > 100 ? linkname.slice(0, 100) : linkname, at + 157, "latin1");
  MAGIC.copy(b, at + 257);
  b.fill(SPACE, at + 148, at + 156);
  let sum = 0;
  for (let i = at; i < at + TAR_BLOCK; i++) sum += b[i]!;
  writeOctal(b, sum, at + 148, 7); // six digits and a NUL, then the space still there
}

/**
 * Writes the header of one entry at b[at..at+512) when it is a single ustar block and returns 512;
 * returns 0 and writes nothing when the entry needs a pax header (see encodeTarHeader). Lets the tar
 * writer build headers in place in its chunk, without a buffer per entry.
 */
export function writeUstarHeader(f: TarHeaderFields, b: Buffer, at: number): number {
  const dir = f.type === "directory" && !f.name.endsWith("/");
  const link = f.linkname ?? "";
  const size = f.type === "file" ? f.size : 0;
  // ASCII: characters are bytes, so the 100-byte limits can be checked on string lengths
  if (f.name.length + (dir ? 1 : 0) > 100 || !isPlainAscii(f.name)) return 0;
  if (link.length > 100 || !isPlainAscii(link)) return 0;
  if (size > MAX_OCTAL_11 || f.uid > MAX_OCTAL_7 || f.gid > MAX_OCTAL_7) return 0;
  ustar(b, at, f, dir ? f.name + "/" : f.name, link, TYPEFLAG[f.type], size);
  return TAR_BLOCK;
}

/** Header bytes for one entry (pax header + ustar header), a multiple of 512. */
export function encodeTarHeader(f: TarHeaderFields): Buffer {
  const single = Buffer.allocUnsafe(TAR_BLOCK);
  if (writeUstarHeader(f, single, 0)) return single;
  const name = f.type === "directory" && !f.name.endsWith("/") ? f.name + "/" : f.name;
  const link = f.linkname ?? "";
  const size = f.type === "file" ? f.size : 0;
  const pax: string[] = [];
  if (Buffer.byteLength(name) > 100 || !isPlainAscii(name)) pax.push(paxRecord("path", name));
  if (Buffer.byteLength(link) > 100 || !isPlainAscii(link)) pax.push(paxRecord("linkpath", link));
  if (size > MAX_OCTAL_11) pax.push(paxRecord("size", String(size)));
  if (f.uid > MAX_OCTAL_7) pax.push(paxRecord("uid", String(f.uid)));
  if (f.gid > MAX_OCTAL_7) pax.push(paxRecord("gid", String(f.gid)));
  const main = Buffer.allocUnsafe(TAR_BLOCK);
  ustar(
    main,
    0,
    f,
    isPlainAscii(name) ? name : "pax-long-name",
    isPlainAscii(link) ? link : "",
    TYPEFLAG[f.type],
    size,
  );
  const data = Buffer.from(pax.join(""), "utf8");
  const paxName = ("PaxHeaders/" + name.replace(/[^\x20-\x7e]/g, "_")).slice(0, 99);
  const ph = Buffer.allocUnsafe(TAR_BLOCK);
  ustar(ph, 0, { ...f, mode: 0o644 }, paxName, "", PAX_TYPEFLAG, data.length);
  return Buffer.concat([ph, data, Buffer.alloc(padding(data.length)), main]);
}

export function padding(size: number): number {
  return (512 - (size % 512)) % 512;
}

/** Two zero blocks end a tar archive. */
export const TAR_END = Buffer.alloc(1024);
