/** A tiny typed client for the control plane's HTTP API, shared by `npm start`, tests and benchmarks. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`${status} ${code}: ${message}`);
  }
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private token?: string,
  ) {}

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const res = await fetch(this.baseUrl + path, {
      method,
      headers: {
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        ...headers,
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    const json = text ? (JSON.parse(text) as unknown) : undefined;
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiError(res.status, err?.code ?? "HTTP_ERROR", err?.message ?? text);
    }
    return json as T;
  }

  async setup(
    setupToken: string,
    body: { tenantName: string; email: string; password: string },
  ): Promise<void> {
    await this.request("POST", "/api/v1/setup", body, { "x-setup-token": setupToken });
  }

  async login(email: string, password: string): Promise<string> {
    const { token } = await this.request<{ token: string }>("POST", "/api/v1/auth/login", {
      email,
      password,
    });
    this.token = token;
    return token;
  }

  createEnrollmentToken(): Promise<{ token: string; expiresAt: string | number }> {
    return this.request("POST", "/api/v1/runners/enrollment-tokens", {});
  }

  listRunners(): Promise<
    Array<{ id: string; name: string; hostname: string; status: string; lastSeenAt: unknown }>
  > {
    return this.request("GET", "/api/v1/runners");
  }

  createBackup(body: Record<string, unknown>): Promise<{ backup: { id: string }; job: { id: string } }> {
    return this.request("POST", "/api/v1/backups", body);
  }

  getBackup(id: string): Promise<Record<string, unknown> & { id: string; status: string }> {
    return this.request("GET", `/api/v1/backups/${encodeURIComponent(id)}`);
  }

  getJob(id: string): Promise<Record<string, unknown> & { id: string; state: string }> {
    return this.request("GET", `/api/v1/jobs/${encodeURIComponent(id)}`);
  }
}
