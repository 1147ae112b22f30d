import { defineConfig } from "drizzle-kit";

// drizzle-kit 0.31 writes flat NNNN_name.sql files, which is what wrangler and readD1Migrations read.
export default defineConfig({
  dialect: "sqlite",
  schema: "./control-plane/src/db/schema.ts",
  out: "./control-plane/migrations",
});
