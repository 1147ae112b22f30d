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

const TYPEFLAG: Record<TarType, string> = { file: "0", hardlink: "1", symlink: "2", directory: "5" };
const MAX_OCTAL_11 = 8 ** 11 - 1;
const MAX_OCTAL_7 = 8 ** 7 - 1;

function writeOctal(buf: Buffer, value: number, offset: number, width: number): void {
  const s = Math.floor(value)
    .toString(8)
    .padStart(width - 1, "0");
  buf.write(s, offset, width - 1, "ascii");
  buf[offset + width - 1] = 0;
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

function ustar(f: TarHeaderFields, name: string, linkname: string, typeflag: string, size: number): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, "utf8");
  writeOctal(b, f.mode & 0o7777, 100, 8);
  writeOctal(b, Math.min(f.uid, MAX_OCTAL_7), 108, 8);
  writeOctal(b, Math.min(f.gid, MAX_OCTAL_7), 116, 8);
  writeOctal(b, Math.min(size, MAX_OCTAL_11), 124, 12);
  writeOctal(b, Math.min(Math.max(0, f.mtime), MAX_OCTAL_11), 136, 12);
  b.write(typeflag, 156, 1, "ascii");
  b.write(linkname, 157, 100, "utf8");
  b.write("ustar\x0000", 257, 8, "binary");
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, "0") + "\x00 ", 148, 8, "binary");
  return b;
}

/** Header bytes for one entry (pax header + ustar header), a multiple of 512. */
export function encodeTarHeader(f: TarHeaderFields): Buffer {
  const name = f.type === "directory" && !f.name.endsWith("/") ? f.name + "/" : f.name;
  const link = f.linkname ?? "";
  const size = f.type === "file" ? f.size : 0;
  const pax: string[] = [];
  if (Buffer.byteLength(name) > 100 || !isPlainAscii(name)) pax.push(paxRecord("path", name));
  if (Buffer.byteLength(link) > 100 || !isPlainAscii(link)) pax.push(paxRecord("linkpath", link));
  if (size > MAX_OCTAL_11) pax.push(paxRecord("size", String(size)));
  if (f.uid > MAX_OCTAL_7) pax.push(paxRecord("uid", String(f.uid)));
  if (f.gid > MAX_OCTAL_7) pax.push(paxRecord("gid", String(f.gid)));
  const main = ustar(
    f,
    isPlainAscii(name) ? name.slice(0, 100) : "pax-long-name",
    isPlainAscii(link) ? link.slice(0, 100) : "",
    TYPEFLAG[f.type],
    size,
  );
  if (pax.length === 0) return main;
  const data = Buffer.from(pax.join(""), "utf8");
  const paxName = ("PaxHeaders/" + name.replace(/[^\x20-\x7e]/g, "_")).slice(0, 99);
  const ph = ustar({ ...f, mode: 0o644 }, paxName, "", "x", data.length);
  return Buffer.concat([ph, data, Buffer.alloc(padding(data.length)), main]);
}

export function padding(size: number): number {
  return (512 - (size % 512)) % 512;
}

/** Two zero blocks end a tar archive. */
export const TAR_END = Buffer.alloc(1024);
