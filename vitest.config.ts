import { defineConfig } from "vitest/config";

// Two projects: the Worker's tests run inside workerd (control-plane/vitest.config.ts);
// everything else (runner, shared, cross-part tests) runs in Node.
export default defineConfig({
  test: {
    projects: [
      "control-plane/vitest.config.ts",
      {
        test: {
          name: "node",
          environment: "node",
          include: ["shared/**/*.test.ts", "runner/**/*.test.ts", "tests/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
