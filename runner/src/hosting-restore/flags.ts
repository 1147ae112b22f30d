import { parseSelection } from "../sources";
import { HostingError } from "../sources/errors";
import type { Conflict, HostingRestoreOptions } from "./index";
import type { RestoreProgress } from "./progress";

/**
 * `--domains all|d1,d2 --components web,db,mail,dns,ssl,router --conflict skip|overwrite|rename` as
 * restore options, for `cairn-runner restore` and the restore job.
 */
export function restoreSelectionFromFlags(f: {
  domains?: string;
  components?: string;
  conflict?: string;
}): Pick<HostingRestoreOptions, "domains" | "components" | "conflict"> {
  const sel = parseSelection(f.domains, f.components);
  const conflict = (f.conflict ?? "skip") as Conflict;
  if (!["skip", "overwrite", "rename"].includes(conflict))
    throw new HostingError(
      "CONFIG_INVALID",
      `unknown conflict action ${JSON.stringify(f.conflict)} (skip|overwrite|rename)`,
    );
  return { domains: sel.domains, components: sel.components, conflict };
}

/** One line per progress event for CLI output, e.g. `restoring databases 45% 2 of 5 domains ETA 12s`. */
export function formatRestoreProgress(p: RestoreProgress): string {
  const head = `${p.phase} ${p.percent}% ${p.domainsText}${p.etaSeconds !== undefined ? ` ETA ${p.etaSeconds}s` : ""}`;
  if (p.error) return `${head} ERROR ${p.error}`;
  if (p.warning) return `${head} WARNING ${p.warning}`;
  return p.message ? `${head} ${p.message}` : head;
}

/** The `job.progress` fields of a restore event (the daemon adds type, jobId, files and rate). */
export function restoreProgressFields(p: RestoreProgress, warnings: string[], errors: string[]) {
  return {
    bytes: p.bytesDone,
    totalBytes: p.bytesTotal,
    percent: p.percent,
    phase: p.phase,
    message: (p.error ?? p.warning ?? p.message)?.slice(0, 1024),
    ...(p.etaSeconds !== undefined ? { etaSeconds: p.etaSeconds } : {}),
    domainsText: p.domainsText,
    warnings: warnings.slice(-50).map((w) => w.slice(0, 1024)),
    errors: errors.slice(-50).map((e) => e.slice(0, 1024)),
  };
}
