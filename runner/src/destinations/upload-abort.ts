/**
 * The abort() of an upload writer (FTP, SFTP, Drive). It may be called any number of times, also
 * while an earlier call is still cleaning up: calls run one after another, and the cleanup (remove
 * the temp file, cancel the session) runs until it has succeeded once. A failed cleanup (server
 * unreachable, cancel unanswered) is not remembered as done, so a later abort() tries it again.
 */
import { DestinationError } from "./types";

export class UploadAbort {
  private last?: Promise<void>;
  private cleanedUp = false;

  /** abort() has been called: transfers stop retrying, commit() refuses, suspend() keeps nothing. */
  get requested(): boolean {
    return this.last !== undefined;
  }

  run(cleanup: () => Promise<void>): Promise<void> {
    const previous = this.last;
    this.last = (async () => {
      await previous?.catch(() => {});
      if (this.cleanedUp) return;
      await cleanup();
      this.cleanedUp = true;
    })();
    return this.last.catch((err: unknown) => {
      this.last = Promise.resolve();
      throw err;
    });
  }
}

/** What a writer's calls throw once it is aborted or suspended. */
export const uploadAborted = (url: string, name: string) =>
  new DestinationError("CANCELLED", url, `upload of ${name} was aborted`);
