import { describe, expect, it } from "vitest";
import { TarReader, type TarEntryHeader } from "./tar-reader";
import { encodeTarHeader, TAR_END } from "./tar-header";

/** A ustar header for a 3-byte file whose numeric fields are replaced as given, checksum redone. */
function header(fields: { at: number; len: number; bytes: Buffer | string }[]): Buffer {
  const h = encodeTarHeader({ name: "f", type: "file", size: 3, mode: 0o644, uid: 1, gid: 2, mtime: 3 });
  for (const f of fields) {
    h.fill(0, f.at, f.at + f.len);
    (typeof f.bytes === "string" ? Buffer.from(f.bytes, "binary") : f.bytes).copy(h, f.at);
  }
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i]!;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "binary");
  return h;
}

function parse(h: Buffer): TarEntryHeader[] {
  const seen: TarEntryHeader[] = [];
  const r = new TarReader((e) => {
    seen.push(e);
    return { write() {}, end() {} };
  });
  r.push(Buffer.concat([h, Buffer.from("abc"), Buffer.alloc(509), TAR_END]));
  r.finish();
  return seen;
}

const MODE = { at: 100, len: 8 };

describe("tar numeric fields", () => {
  for (const [text, value] of [
    ["0000644\0", 0o644],
    ["644\0\0\0\0\0", 0o644],
    ["   644 \0", 0o644],
    ["\t644\n\0\0\0", 0o644],
    ["0000644 ", 0o644],
    ["00000644", 0o644], // all eight bytes, no terminator
    ["644\0junk", 0o644], // text after the NUL is not part of the field
    ["\0\0\0\0\0\0\0\0", 0],
    ["        ", 0],
  ] as const)
    it(`${JSON.stringify(text)} -> ${value.toString(8)}`, () =>
      expect(parse(header([{ ...MODE, bytes: text }]))[0]!.mode).toBe(value));

  for (const text of ["64x\0", "6 4\0", "-644\0", "0o644\0", "6\xa044\0"])
    it(`${JSON.stringify(text)} is refused`, () =>
      expect(() => parse(header([{ ...MODE, bytes: text }]))).toThrow(/not octal/));

  it("GNU base-256 values", () => {
    const uid = Buffer.alloc(8);
    uid[0] = 0x80;
    uid.writeUInt32BE(3_000_000_000, 4);
    expect(parse(header([{ at: 108, len: 8, bytes: uid }]))[0]!.uid).toBe(3_000_000_000);
  });

  it("the checksum covers every byte outside its own field", () => {
    const h = header([]);
    expect(parse(h)).toHaveLength(1);
    for (const at of [0, 147, 156, 511]) {
      const bad = Buffer.from(h);
      bad[at]! ^= 1;
      expect(() => parse(bad)).toThrow(/checksum/);
    }
  });
});
