/**
 * ftp-srv on a free loopback port (plain, or explicit TLS with a self-signed certificate made by
 * the openssl CLI), with server-side fault injection: truncate stored files by one byte, reset the
 * connection after N bytes of an upload, or refuse to delete files.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { FileSystem, FtpSrv } from "ftp-srv";
import { freePort } from "./sshd";

export interface FtpFaults {
  mode?: "truncate" | "reset";
  resetAfterBytes?: number;
  /** Answer DELE with 550 and keep the file (as a server refusing to delete a file it holds open). */
  refuseDelete?: boolean;
}

export interface TestFtpServer {
  port: number;
  root: string;
  user: string;
  password: string;
  /** PEM of the self-signed certificate (TLS servers only). */
  cert?: string;
  faults: FtpFaults;
  /** Upload bytes the server wrote to disk (STOR and APPE together). */
  stats: { bytesStored: number };
  close(): Promise<void>;
}

export function makeSelfSignedCert(dir: string): { key: string; cert: string } {
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
    ],
    { stdio: "ignore" },
  );
  return { key: join(dir, "key.pem"), cert: join(dir, "cert.pem") };
}

export async function startFtpServer(opts: { tls: boolean; root?: string }): Promise<TestFtpServer> {
  const dir = await mkdtemp(join(tmpdir(), "cairn-ftp-"));
  const root = opts.root ?? dir;
  const faults: FtpFaults = {};
  const stats = { bytesStored: 0 };
  const files = opts.tls ? makeSelfSignedCert(dir) : undefined;
  const tlsOptions = files ? { key: await readFile(files.key), cert: await readFile(files.cert) } : false;
  const port = await freePort();
  const user = "cairn";
  const password = "ftp-test-password";

  class FaultyFs extends FileSystem {
    override delete(path: string): ReturnType<FileSystem["delete"]> {
      if (faults.refuseDelete) return Promise.reject(new Error("Permission denied"));
      return super.delete(path);
    }

    override write(
      fileName: string,
      o?: { append?: boolean; start?: unknown },
    ): ReturnType<FileSystem["write"]> {
      const res = super.write(fileName, o) as { stream: Writable & { path?: string }; clientPath: string };
      const real = res.stream;
      const realWrite = real.write.bind(real) as (chunk: Buffer, ...rest: unknown[]) => boolean;
      real.write = ((chunk: Buffer, ...rest: unknown[]) => {
        stats.bytesStored += chunk.length;
        return realWrite(chunk, ...rest);
      }) as typeof real.write;
      if (!faults.mode) return res;
      const connection = this.connection as unknown as {
        commandSocket: { destroy(): void };
        connector: { socket?: { destroy(): void } };
      };
      let seen = 0;
      let held = Buffer.alloc(0);
      const wrapped = new Writable({
        write(chunk: Buffer, _enc, cb) {
          seen += chunk.length;
          if (faults.mode === "reset" && seen > (faults.resetAfterBytes ?? 0)) {
            connection.connector.socket?.destroy();
            connection.commandSocket.destroy();
            return cb();
          }
          if (faults.mode === "truncate") {
            const all = Buffer.concat([held, chunk]);
            held = Buffer.from(all.subarray(all.length - 1));
            return real.write(all.subarray(0, all.length - 1), () => cb());
          }
          real.write(chunk, () => cb());
        },
        final(cb) {
          real.end(() => cb());
        },
      }) as Writable & { path?: string };
      wrapped.path = real.path;
      return { stream: wrapped, clientPath: res.clientPath };
    }
  }

  const server = new FtpSrv({
    url: `ftp://127.0.0.1:${port}`,
    pasv_url: "127.0.0.1",
    pasv_min: 20000,
    pasv_max: 60000,
    anonymous: false,
    greeting: "cairn test ftp",
    tls: tlsOptions as never,
    log: {
      trace() {},
      debug() {},
      info() {},
      warn() {},
      error() {},
      child() {
        return this;
      },
    } as never,
  });
  server.on("login", ({ connection, username, password: pw }, resolve, reject) => {
    if (username !== user || pw !== password) return reject(new Error("bad login"));
    resolve({ fs: new FaultyFs(connection, { root, cwd: "/" }) });
  });
  await server.listen();
  return {
    port,
    root,
    user,
    password,
    cert: files ? await readFile(files.cert, "utf8") : undefined,
    faults,
    stats,
    async close() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
