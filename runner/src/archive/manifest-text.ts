/**
 * Manifest entries as JSON text, cut into pieces of about PIECE_CHARS characters. The tar worker
 * serialises entries with this and hands the pieces to the ManifestBuilder on the main thread,
 * which compresses them: the worker stays free of zstd and crypto (docs/FORMAT.md §4).
 */
import type { ManifestEntry } from "./manifest-types";

/** Entry JSON is compressed in pieces of about this many characters as the backup runs. */
export const PIECE_CHARS = 1024 * 1024;

export class ManifestEntryText {
  count = 0;
  private text = "";
  private held = 0;

  /** `emit(json, n)`: n entries as comma-joined JSON objects (no brackets, no leading comma). */
  constructor(private readonly emit: (json: string, n: number) => void) {}

  /** entries added and not yet emitted */
  get pending(): number {
    return this.held;
  }

  add(e: ManifestEntry): void {
    this.text += (this.held++ === 0 ? "" : ",") + JSON.stringify(e);
    this.count++;
    if (this.text.length >= PIECE_CHARS) this.flush();
  }

  flush(): void {
    if (this.held === 0) return;
    this.emit(this.text, this.held);
    this.text = "";
    this.held = 0;
  }
}
