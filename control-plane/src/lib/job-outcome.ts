/** A finished job as the outcome handlers see it (destination-outcomes.ts, download-relay-outcome.ts). */
export interface JobOutcome {
  jobId: string;
  tenantId: string;
  runnerId: string;
  state: string;
  result?: Record<string, unknown>;
  error?: { code: string; message: string };
}

/** Why the job did not succeed: the runner's error, or one named after the final state (e.g. CANCELLED). */
export function jobFailure(a: Pick<JobOutcome, "state" | "error">): { code: string; message: string } {
  return { code: a.error?.code ?? a.state, message: a.error?.message ?? `job ${a.state.toLowerCase()}` };
}
