import { describe, expect, it } from "vitest";
import type { JobProgress } from "../../../shared/protocol/runner-messages";
import { ProgressReporter } from "./progress";

/** A manual clock and timer queue: the throttle is checked without sleeping. */
function harness() {
  let now = 0;
  const timers: { at: number; fn: () => void }[] = [];
  const sent: JobProgress[] = [];
  const r = new ProgressReporter("job_1", (m) => sent.push(m), {
    now: () => now,
    minIntervalMs: 500,
    windowMs: 5000,
    setTimer: (fn, ms) => {
      const t = { at: now + ms, fn };
      timers.push(t);
      return t;
    },
    clearTimer: (t) => timers.splice(timers.indexOf(t as never), 1),
  });
  const advance = (ms: number) => {
    now += ms;
    for (const t of timers.filter((x) => x.at <= now)) {
      timers.splice(timers.indexOf(t), 1);
      t.fn();
    }
  };
  return { r, sent, advance, timers };
}

describe("progress reporter", () => {
  it("sends at most one message per interval, the latest values, with a sliding-window rate", () => {
    const { r, sent, advance } = harness();
    r.update({ bytes: 0, files: 0, totalBytes: 10_000 });
    for (let i = 1; i <= 100; i++) r.update({ bytes: i * 10, files: i, totalBytes: 10_000 });
    expect(sent).toHaveLength(1);
    advance(499);
    expect(sent).toHaveLength(1);
    advance(1);
    expect(sent).toHaveLength(2);
    expect(sent[1]).toMatchObject({ bytes: 1000, files: 100, percent: 10, totalBytes: 10_000 });
    // then 1000 bytes/s: at first the window still holds the t=0 burst, 5 s later only the steady rate
    let bytes = 1000;
    for (let t = 1; t <= 20; t++) {
      advance(100);
      r.update({ bytes: (bytes += 100), files: 100, totalBytes: 10_000 });
    }
    expect(sent.length).toBeLessThanOrEqual(2 + 4 + 1); // 2.0 s more: at most one per 500 ms
    // the timer-driven send at t=2.5 s carries the sample of t=2.4 s (2900 bytes since t=0)
    expect(sent.at(-1)).toMatchObject({ bytes: 2900 });
    expect(sent.at(-1)!.rate).toBeCloseTo(2900 / 2.4, 5);
    for (let t = 1; t <= 60; t++) {
      advance(100);
      r.update({ bytes: (bytes += 100), files: 100 });
    }
    expect(sent.at(-1)!.rate).toBeCloseTo(1000, 5);
  });

  it("measures the rate on rateBytes when given: held bytes of a resumed sync count for percent, not speed", () => {
    const { r, sent, advance } = harness();
    // 6000 of 10000 bytes were held from an earlier job; 100 bytes are sent every 100 ms.
    r.update({ bytes: 6000, rateBytes: 0, files: 0, totalBytes: 10_000 });
    for (let t = 1; t <= 20; t++) {
      advance(100);
      r.update({ bytes: 6000 + t * 100, rateBytes: t * 100, files: 0, totalBytes: 10_000 });
    }
    advance(500); // the throttle sends the latest update
    expect(sent.at(-1)).toMatchObject({ bytes: 8000, percent: 80 });
    expect(sent.at(-1)!.rate).toBeCloseTo(1000, 5);
    expect(sent.at(-1)).not.toHaveProperty("rateBytes");
  });

  it("keepalive re-sends the latest state, or zeros before any progress", () => {
    const { r, sent, advance } = harness();
    r.keepalive();
    expect(sent).toEqual([{ type: "job.progress", jobId: "job_1", bytes: 0, files: 0, rate: 0 }]);
    advance(1000);
    r.update({ bytes: 10, files: 2 });
    advance(1000);
    r.keepalive();
    expect(sent.slice(1)).toMatchObject([
      { bytes: 10, files: 2 },
      { bytes: 10, files: 2 },
    ]);
    r.stop();
    r.keepalive();
    expect(sent).toHaveLength(3);
  });

  it("sends nothing after stop, and omits percent when the total is unknown", () => {
    const { r, sent, advance, timers } = harness();
    r.update({ bytes: 5, files: 1 });
    expect(sent[0]!.percent).toBeUndefined();
    r.update({ bytes: 6, files: 1 });
    expect(timers).toHaveLength(1);
    r.stop();
    expect(timers).toHaveLength(0);
    advance(10_000);
    r.update({ bytes: 7, files: 1 });
    expect(sent).toHaveLength(1);
  });
});
