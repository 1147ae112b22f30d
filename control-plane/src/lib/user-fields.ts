import { z } from "zod";

/** Fields of a new user account, the same whether setup creates the first ROOT or a user creates another. */

// Deliberately loose (admin@localhost is a fine first user on a self-hosted install).
export const NewUserEmail = z
  .string()
  .trim()
  .toLowerCase()
  .max(254)
  .regex(/^[^\s@]+@[^\s@]+$/, "must be an email address");

export const NewUserPassword = z.string().min(12, "password must be at least 12 characters").max(1024);
