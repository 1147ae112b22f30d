import { randomBytes } from "node:crypto";
import { open, rename, chmod, stat, unlink, mkdir } from "node:fs/promises";
import path from "node:path";

/**
 * Write a file so that readers see either the old or the new content, never a torn one,
 * and so that it survives a power cut once this resolves (file and directory fsynced).
 * The temp file is created with the final mode, so secrets are never briefly world-readable.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode); // the umask may have narrowed or the fs may ignore the open mode
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await chmod(file, mode);
  const st = await stat(file);
  if ((st.mode & 0o777) !== mode) {
    throw new Error(`${file}: mode is ${(st.mode & 0o777).toString(8)}, expected ${mode.toString(8)}`);
  }
  await fsyncDir(dir);
}

export async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } catch {
    // some filesystems refuse fsync on directories; the rename is still atomic there
  } finally {
    await dh.close();
  }
}
