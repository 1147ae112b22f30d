/**
 * A real OpenSSH sshd for tests: generated host key and user key in a temp dir, key-only auth, the
 * internal SFTP server, on a free loopback port. Needs Debian `openssh-server` (sshd) and ssh-keygen.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

export const SSHD = "/usr/sbin/sshd";

/** Why sshd cannot run here, or undefined when it can. */
export function sshdUnavailable(): string | undefined {
  if (!existsSync(SSHD)) return `${SSHD} missing: install Debian openssh-server`;
  try {
    execFileSync("ssh-keygen", ["-?"], { stdio: "ignore" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      return "ssh-keygen missing: install Debian openssh-client";
  }
  return undefined;
}

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

function keygen(file: string): void {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "cairn-test", "-f", file], {
    stdio: "ignore",
  });
}

export interface TestSshd {
  port: number;
  dir: string;
  user: string;
  userKey: string;
  hostPublicKey: string;
  /** Stop sshd, keep its directory (to restart it there). */
  stop(): Promise<void>;
  /** Stop sshd and remove its directory if this call created it. */
  close(): Promise<void>;
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("sshd did not start listening");
}

/** Starts sshd. Pass `dir`/`port` of a previous server to restart it with a fresh host key. */
export async function startSshd(
  opts: { port?: number; dir?: string; newHostKey?: boolean } = {},
): Promise<TestSshd> {
  const ownsDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "cairn-sshd-")));
  const port = opts.port ?? (await freePort());
  const hostKey = join(dir, "host_ed25519");
  if (opts.newHostKey || !existsSync(hostKey)) {
    await rm(hostKey, { force: true });
    await rm(`${hostKey}.pub`, { force: true });
    keygen(hostKey);
  }
  const userKey = join(dir, "user_ed25519");
  if (!existsSync(userKey)) {
    keygen(userKey);
    await writeFile(join(dir, "authorized_keys"), await readFile(`${userKey}.pub`));
  }
  // sshd refuses to start without its privilege separation directory.
  await mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  const user = userInfo().username;
  await writeFile(
    join(dir, "sshd_config"),
    [
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "StrictModes no",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      "UsePAM no",
      "Subsystem sftp internal-sftp",
      "LogLevel ERROR",
      "",
    ].join("\n"),
  );
  const child = spawn(SSHD, ["-D", "-e", "-f", join(dir, "sshd_config"), "-p", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  try {
    await waitForPort(port, child);
  } catch (err) {
    child.kill();
    throw new Error(`${(err as Error).message}: ${stderr}`);
  }
  const hostPublicKey = (await readFile(`${hostKey}.pub`, "utf8")).trim();
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
  };
  return {
    port,
    dir,
    user,
    userKey,
    hostPublicKey,
    stop,
    async close() {
      await stop();
      if (ownsDir) await rm(dir, { recursive: true, force: true });
    },
  };
}
