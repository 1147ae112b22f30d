import { describe, expect, it } from "vitest";
import { encodeTarHeader, writeUstarHeader, type TarHeaderFields } from "./tar-header";

/**
 * The header writer as it was before it wrote bytes in place (string octal fields, a fresh buffer
 * per header): archives must stay byte-identical, so it is the oracle here.
 */
function referenceHeader(f: TarHeaderFields): Buffer {
  const writeOctal = (buf: Buffer, value: number, offset: number, width: number) => {
    buf.write(
      Math.floor(value)
        .toString(8)
        .padStart(width - 1, "0"),
      offset,
      width - 1,
      "ascii",
    );
    buf[offset + width - 1] = 0;
  };
  const plain = (s: string) => /^[\x20-\x7e]*$/.test(s);
  const record = (key: string, value: string) => {
    const body = ` ${key}=${value}\n`;
    const bodyLen = Buffer.byteLength(body);
    let len = bodyLen + String(bodyLen).length;
    if (String(len).length !== String(len - bodyLen).length) len = bodyLen + String(len).length;
    return `${len}${body}`;
  };
  const block = (g: TarHeaderFields, name: string, link: string, flag: string, size: number) => {
    const b = Buffer.alloc(512);
    b.write(name, 0, 100, "utf8");
    writeOctal(b, g.mode & 0o7777, 100, 8);
    writeOctal(b, Math.min(g.uid, 8 ** 7 - 1), 108, 8);
    writeOctal(b, Math.min(g.gid, 8 ** 7 - 1), 116, 8);
    writeOctal(b, Math.min(size, 8 ** 11 - 1), 124, 12);
    writeOctal(b, Math.min(Math.max(0, g.mtime), 8 ** 11 - 1), 136, 12);
    b.write(flag, 156, 1, "ascii");
    b.write(link, 157, 100, "utf8");
    b.write("ustar\x0000", 257, 8, "binary");
    b.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += b[i]!;
    b.write(sum.toString(8).padStart(6, "0") + "\x00 ", 148, 8, "binary");
    return b;
  };
  const flags = { file: "0", hardlink: "1", symlink: "2", directory: "5" };
  const name = f.type === "directory" && !f.name.endsWith("/") ? f.name + "/" : f.name;
  const link = f.linkname ?? "";
  const size = f.type === "file" ? f.size : 0;
  const pax: string[] = [];
  if (Buffer.byteLength(name) > 100 || !plain(name)) pax.push(record("path", name));
  if (Buffer.byteLength(link) > 100 || !plain(link)) pax.push(record("linkpath", link));
  if (size > 8 ** 11 - 1) pax.push(record("size", String(size)));
  if (f.uid > 8 ** 7 - 1) pax.push(record("uid", String(f.uid)));
  if (f.gid > 8 ** 7 - 1) pax.push(record("gid", String(f.gid)));
  const main = block(
    f,
    plain(name) ? name.slice(0, 100) : "pax-long-name",
    plain(link) ? link.slice(0, 100) : "",
    flags[f.type],
    size,
  );
  if (pax.length === 0) return main;
  const data = Buffer.from(pax.join(""), "utf8");
  const paxName = ("PaxHeaders/" + name.replace(/[^\x20-\x7e]/g, "_")).slice(0, 99);
  const ph = block({ ...f, mode: 0o644 }, paxName, "", "x", data.length);
  return Buffer.concat([ph, data, Buffer.alloc((512 - (data.length % 512)) % 512), main]);
}

const base: TarHeaderFields = {
  name: "site/public_html/index.php",
  type: "file",
  size: 1234,
  mode: 0o100644,
  uid: 1000,
  gid: 1000,
  mtime: 1_767_000_000,
};

const cases: [string, TarHeaderFields][] = [
  ["a plain file", base],
  ["an empty file", { ...base, size: 0 }],
  ["a directory", { ...base, type: "directory", name: "site/public_html", mode: 0o40755 }],
  ["a directory given with its slash", { ...base, type: "directory", name: "site/" }],
  ["a symlink", { ...base, type: "symlink", linkname: "../shared/config.php" }],
  ["a hardlink", { ...base, type: "hardlink", linkname: "site/a.txt" }],
  ["a 100-character name", { ...base, name: "n".repeat(100) }],
  ["a 101-character name", { ...base, name: "n".repeat(101) }],
  [
    "a 100-character directory name (101 with its slash)",
    { ...base, type: "directory", name: "d".repeat(100) },
  ],
  ["a non-ASCII name", { ...base, name: "site/café/ünïcode.txt" }],
  ["a control character in the name", { ...base, name: "site/tab\there" }],
  ["a long link target", { ...base, type: "symlink", linkname: "t/".repeat(60) }],
  ["a non-ASCII link target", { ...base, type: "symlink", linkname: "naïve" }],
  ["a size of 8 GiB", { ...base, size: 8 ** 11 }],
  ["the largest octal size", { ...base, size: 8 ** 11 - 1 }],
  ["a large uid and gid", { ...base, uid: 8 ** 7, gid: 4_000_000_000 }],
  ["a negative mtime", { ...base, mtime: -5 }],
  ["a fractional mtime", { ...base, mtime: 1.9 }],
  ["a negative uid", { ...base, uid: -1 }],
  ["setuid and sticky bits", { ...base, mode: 0o107777 }],
];

describe("tar headers", () => {
  it.each(cases)("%s: same bytes as the reference writer", (_label, f) => {
    expect(encodeTarHeader(f).equals(referenceHeader(f))).toBe(true);
  });

  it.each(cases)("%s: written in place over old bytes, or left to the pax path", (_label, f) => {
    const b = Buffer.alloc(2048, 0xee);
    const n = writeUstarHeader(f, b, 700);
    const ref = referenceHeader(f);
    if (ref.length === 512) {
      expect(n).toBe(512);
      expect(b.subarray(700, 1212).equals(ref)).toBe(true);
    } else {
      expect(n).toBe(0);
      expect(b.equals(Buffer.alloc(2048, 0xee))).toBe(true);
    }
    expect(b.subarray(0, 700).equals(Buffer.alloc(700, 0xee))).toBe(true);
    expect(b.subarray(1212).equals(Buffer.alloc(836, 0xee))).toBe(true);
  });

  it("random headers match the reference writer", () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const alphabet = "abz09._-/ é€\u{1F600}";
    const chars = [...alphabet];
    const str = (max: number) =>
      Array.from({ length: rnd(max) + 1 }, () => chars[rnd(chars.length)]).join("");
    const types = ["file", "directory", "symlink", "hardlink"] as const;
    for (let i = 0; i < 2000; i++) {
      const type = types[rnd(4)]!;
      const f: TarHeaderFields = {
        name: str(140),
        type,
        size: rnd(3) === 0 ? rnd(2 ** 31) * 2 ** 4 : rnd(100_000),
        mode: rnd(0o177777),
        uid: rnd(10) === 0 ? 2 ** 21 + rnd(1000) : rnd(70_000),
        gid: rnd(70_000),
        mtime: rnd(2 ** 31),
        linkname: type === "symlink" || type === "hardlink" ? str(140) : undefined,
      };
      expect(encodeTarHeader(f).equals(referenceHeader(f)), JSON.stringify(f)).toBe(true);
    }
  });
});
