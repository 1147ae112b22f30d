import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ApiErrorCode } from "../../shared/errors";

/** The one error type of the HTTP API; `onError` renders it as `{"error":{"code","message"}}`. */
export class ApiError extends HTTPException {
  constructor(
    status: ContentfulStatusCode,
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(status, { message });
  }
}

export const badRequest = (m: string) => new ApiError(400, ApiErrorCode.BadRequest, m);
export const validationFailed = (m: string) => new ApiError(400, ApiErrorCode.ValidationFailed, m);
export const unauthorized = (m = "authentication required") =>
  new ApiError(401, ApiErrorCode.Unauthorized, m);
export const forbidden = (m = "permission denied") => new ApiError(403, ApiErrorCode.Forbidden, m);
export const notFound = (what: string) => new ApiError(404, ApiErrorCode.NotFound, `${what} not found`);
export const conflict = (m: string) => new ApiError(409, ApiErrorCode.Conflict, m);
