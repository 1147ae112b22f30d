import type { Env } from "../env";

/** Each runner has its own RunnerSession Durable Object, addressed by its runner id. */
export function runnerStub(env: Env, runnerId: string) {
  return env.RUNNER_SESSION.get(env.RUNNER_SESSION.idFromName(runnerId));
}
