/**
 * What end-to-end tests read from the control plane's API (control-plane/README.md has the full
 * shapes): only the fields the tests look at, so a test's type says what it relies on.
 */

export interface JobView {
  id: string;
  state: string;
  error?: { code: string; message: string };
  progress?: Record<string, unknown>;
  result?: Record<string, unknown>;
}

export interface CopyView {
  destinationId: string;
  status: string;
  jobId: string | null;
  objectName: string | null;
  size: number | null;
  sha256: string | null;
  bytesDone: number;
}

export interface BackupView {
  id: string;
  status: string;
  fileName: string;
  size: number;
  sha256: string;
  copies: CopyView[];
}
