/**
 * Google Drive authorization from the console, end to end: the real Worker starts the authorization-code
 * flow (state + PKCE), the fake Google consent screen redirects back, the Worker exchanges the code at the
 * fake token endpoint and seals the refresh token; a real runner then passes Test Connection with it.
 * Reused, forged and missing states are refused with OAUTH_STATE_INVALID and an activity row.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeDrive, type FakeDrive } from "../destinations/fake-gdrive-server";
import {
  type Cluster,
  type RunnerHandle,
  startCluster,
  startOnlineRunner,
  waitForJobEnd,
} from "../support/cluster";
import { driveDestinationBody } from "../support/drive-destination";

let cluster: Cluster;
let runner: RunnerHandle;
let drive: FakeDrive;
let runnerId: string;

const api = <T>(method: string, path: string, body?: unknown) => cluster.api.request<T>(method, path, body);

interface Activity {
  items: {
    operation: string;
    status: string;
    actor: { type: string; id: string | null };
    details: Record<string, unknown> | null;
  }[];
}

async function createDriveDestination(name: string, clientSecret = drive.clientSecret) {
  return api<{ id: string }>("POST", "/api/v1/destinations", driveDestinationBody(drive, name, clientSecret));
}

/** What the browser does: follow the authorization URL to the consent screen, which redirects back. */
async function consent(authorizationUrl: string): Promise<string> {
  const res = await fetch(authorizationUrl, { redirect: "manual" });
  expect(res.status).toBe(302);
  return res.headers.get("location")!;
}

const errorOf = async (res: Response) =>
  ((await res.json()) as { error: { code: string; message: string } }).error;

beforeAll(async () => {
  [cluster, drive] = await Promise.all([startCluster(), startFakeDrive()]);
  const source = join(cluster.dir, "site");
  mkdirSync(source, { recursive: true });
  writeFileSync(join(source, "index.html"), "<h1>drive</h1>\n");
  ({ runner, runnerId } = await startOnlineRunner(cluster, "gdrive-1", [source]));
}, 120_000);

afterAll(async () => {
  await runner?.stop();
  await Promise.all([cluster?.close(), drive?.close()]);
});

describe("Google Drive authorization-code flow from the console", () => {
  it("a destination without a refresh token is refused by the runner with a clear message", async () => {
    const d = await createDriveDestination("drive-unauthorized");
    const t = await api<{ job: { id: string } }>("POST", `/api/v1/destinations/${d.id}/test`, { runnerId });
    const j = await waitForJobEnd(cluster, t.job.id);
    expect(j.state).toBe("FAILED");
    expect(j.error?.message).toMatch(/not authorized yet/);
  });

  it("authorize → consent → callback stores the refresh token; Test Connection then succeeds on a real runner", async () => {
    const d = await createDriveDestination("drive-main");
    const { authorizationUrl, redirectUri } = await api<{ authorizationUrl: string; redirectUri: string }>(
      "POST",
      `/api/v1/destinations/${d.id}/gdrive/authorize`,
    );
    const u = new URL(authorizationUrl);
    expect(u.origin + u.pathname).toBe(drive.authUrl);
    expect(u.searchParams.get("code_challenge_method")).toBe("S256");
    expect(u.searchParams.get("access_type")).toBe("offline");
    expect(redirectUri).toBe(`${cluster.url}/api/v1/destinations/gdrive/callback`);
    const state = u.searchParams.get("state")!;
    expect(state.length).toBeGreaterThanOrEqual(40);

    const back = await consent(authorizationUrl);
    expect(back.startsWith(redirectUri)).toBe(true);
    const cb = await fetch(back, { redirect: "manual" });
    expect(cb.status, await cb.clone().text()).toBe(303);
    expect(cb.headers.get("location")).toContain(`destination=${d.id}`);
    expect(drive.stats.codeExchanges).toBe(1);

    // The refresh token is never returned by the API.
    const view = await api<Record<string, unknown>>("GET", `/api/v1/destinations/${d.id}`);
    expect(JSON.stringify(view)).not.toContain(drive.refreshToken);
    expect(view.hasCredentials).toBe(true);

    const refreshesBefore = drive.stats.refreshes;
    const t = await api<{ job: { id: string } }>("POST", `/api/v1/destinations/${d.id}/test`, { runnerId });
    const j = await waitForJobEnd(cluster, t.job.id);
    expect(j.state, JSON.stringify(j)).toBe("SUCCEEDED");
    expect(drive.stats.refreshes).toBeGreaterThan(refreshesBefore);
    const tested = await api<{ lastTest: { status: string } }>("GET", `/api/v1/destinations/${d.id}`);
    expect(tested.lastTest.status).toBe("ok");

    // The same callback again: the state was consumed.
    const again = await fetch(back, { redirect: "manual" });
    expect(again.status).toBe(400);
    expect((await errorOf(again)).code).toBe("OAUTH_STATE_INVALID");
    expect(drive.stats.codeExchanges).toBe(1);

    const log = await api<Activity>("GET", "/api/v1/activity?operation=destination.gdrive.callback");
    expect(log.items.filter((i) => i.status === "success")).toHaveLength(1);
    const refused = log.items.filter((i) => i.status === "failure");
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(log)).not.toContain(drive.refreshToken);
  });

  it("forged or missing state is refused before any code exchange", async () => {
    const exchanges = drive.stats.codeExchanges;
    for (const q of ["?code=4/x&state=forged-state-value", "?code=4/x", ""]) {
      const res = await fetch(`${cluster.url}/api/v1/destinations/gdrive/callback${q}`, {
        redirect: "manual",
      });
      expect(res.status).toBe(400);
      expect((await errorOf(res)).code).toBe("OAUTH_STATE_INVALID");
    }
    expect(drive.stats.codeExchanges).toBe(exchanges);
  });

  it("a code the token endpoint refuses (PKCE verifier mismatch / wrong client secret) is a clear error, token not stored", async () => {
    const d = await createDriveDestination("drive-wrong-secret", "not-the-secret");
    const { authorizationUrl } = await api<{ authorizationUrl: string }>(
      "POST",
      `/api/v1/destinations/${d.id}/gdrive/authorize`,
    );
    const back = await consent(authorizationUrl);
    const res = await fetch(back, { redirect: "manual" });
    expect(res.status).toBe(502);
    const err = await errorOf(res);
    expect(err.code).toBe("OAUTH_EXCHANGE_FAILED");
    expect(err.message).toContain("invalid_client");
    expect(err.message).not.toContain("not-the-secret");

    // A code replayed with someone else's state (PKCE verifier does not match its challenge).
    const other = await createDriveDestination("drive-pkce");
    const a1 = await api<{ authorizationUrl: string }>(
      "POST",
      `/api/v1/destinations/${other.id}/gdrive/authorize`,
    );
    const a2 = await api<{ authorizationUrl: string }>(
      "POST",
      `/api/v1/destinations/${other.id}/gdrive/authorize`,
    );
    const code1 = new URL(await consent(a1.authorizationUrl)).searchParams.get("code")!;
    const back2 = new URL(await consent(a2.authorizationUrl));
    back2.searchParams.set("code", code1);
    const swapped = await fetch(back2, { redirect: "manual" });
    expect(swapped.status).toBe(502);
    expect((await errorOf(swapped)).code).toBe("OAUTH_EXCHANGE_FAILED");
  });

  it("authorize is refused for a non-gdrive destination", async () => {
    const s3 = await api<{ id: string }>("POST", "/api/v1/destinations", {
      name: "not-drive",
      kind: "ftp",
      config: { host: "127.0.0.1", path: "/x" },
      credentials: { password: "x" },
    });
    await expect(api("POST", `/api/v1/destinations/${s3.id}/gdrive/authorize`)).rejects.toMatchObject({
      status: 400,
    });
  });
});
