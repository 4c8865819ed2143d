// The registry of problem codes. Every error response is RFC 9457 application/problem+json:
//   {type, title, status, code, detail?, instance?, errors?: [{path, message}], ...extensions}
// `code` is stable and documented in docs/api.md; `type` is a URN derived from it.

export const PROBLEMS = {
  malformed_json: { status: 400, title: 'The request body is not valid JSON' },
  invalid_cursor: { status: 400, title: 'The cursor is not valid' },
  invalid_oauth_state: { status: 400, title: 'The sign-in state is unknown, used, expired or not from this browser; start signing in again' },
  malformed_request: { status: 400, title: 'The request is not valid HTTP' },
  invalid_token: { status: 400, title: 'The link is not valid, was already used, or has expired' },
  unauthorized: { status: 401, title: 'A valid API key or access token is required' },
  invalid_credentials: { status: 401, title: 'The email address or password is not correct' },
  invalid_refresh_token: { status: 401, title: 'The refresh token is not valid' },
  oauth_failed: { status: 401, title: 'Signing in with the identity provider failed' },
  signature_failed: { status: 401, title: 'The webhook signature is missing, malformed, stale or does not match' },
  totp_required: { status: 401, title: 'The password is right; a TOTP code (or a recovery code) is required too' },
  invalid_totp: { status: 401, title: 'The TOTP code or recovery code is not correct' },
  forbidden: { status: 403, title: 'The API key or role lacks the permission this needs' },
  csrf_failed: { status: 403, title: 'A cookie-authenticated request failed the CSRF check' },
  invitation_required: { status: 403, title: 'Signing up needs an invitation' },
  signup_closed: { status: 403, title: 'Signing up is closed on this server' },
  email_unverified: { status: 403, title: 'The identity provider does not vouch for this email address' },
  totp_enrolment_required: { status: 403, title: 'This organization requires a second factor (TOTP); enable it first' },
  invitation_email_mismatch: { status: 403, title: 'The invitation is for another email address' },
  invalid_signature: { status: 403, title: 'The callback is not signed by the vendor, or its token is not valid' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  request_timeout: { status: 408, title: 'The request was not received in time' },
  idempotency_in_flight: { status: 409, title: 'A request with this Idempotency-Key is still being processed' },
  conflict: { status: 409, title: 'The resource is not in a state that allows this' },
  email_taken: { status: 409, title: 'A user with this email address exists' },
  email_not_configured: { status: 409, title: 'This server sends no email (HERALD_SMTP_URL is not set); this needs it' },
  upgrade_required: { status: 426, title: 'This endpoint speaks WebSocket: send an Upgrade request' },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  uri_too_long: { status: 414, title: 'The request URL is too long' },
  unsupported_media_type: { status: 415, title: 'Unsupported content type' },
  rate_limited: { status: 429, title: 'Too many requests; retry after Retry-After' },
  headers_too_large: { status: 431, title: 'The request headers are too large' },
  validation_failed: { status: 422, title: 'The request is not valid' },
  weak_password: { status: 422, title: 'The password does not meet the password policy' },
  forbidden_property: { status: 422, title: 'The request body has a property name that is refused (__proto__, constructor.prototype)' },
  idempotency_key_reused: { status: 422, title: 'This Idempotency-Key was used with a different request' },
  unknown_recipients: { status: 422, title: 'Some recipients do not exist' },
  no_channel: { status: 422, title: 'Some recipients cannot be reached on any requested channel' },
  empty_content: { status: 422, title: 'A notification needs a title or a body' },
  missing_variables: { status: 422, title: 'The template uses variables the data does not have' },
  internal: { status: 500, title: 'Internal server error' },
  provider_unavailable: { status: 502, title: 'The identity provider could not be reached or answered in an unexpected way' },
  unavailable: { status: 503, title: 'Service temporarily unavailable' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof PROBLEMS;

export interface FieldError {
  path: string;
  message: string;
}

export class Problem extends Error {
  readonly code: ProblemCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly errors: FieldError[] | undefined;
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    code: ProblemCode,
    detail?: string,
    opts: { errors?: FieldError[]; extensions?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(detail ?? PROBLEMS[code].title);
    this.code = code;
    this.status = PROBLEMS[code].status;
    this.detail = detail;
    this.errors = opts.errors;
    this.extensions = opts.extensions ?? {};
    this.headers = opts.headers ?? {};
  }

  toJSON(instance?: string): Record<string, unknown> {
    return {
      type: `urn:herald:problem:${this.code}`,
      title: PROBLEMS[this.code].title,
      status: this.status,
      code: this.code,
      ...(this.detail !== undefined && { detail: this.detail }),
      ...(instance !== undefined && { instance }),
      ...(this.errors && { errors: this.errors }),
      ...this.extensions,
    };
  }
}
