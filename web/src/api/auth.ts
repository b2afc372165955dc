// The session API: sign in (password, then the TOTP code when asked), sign
// out, who is signed in, second-factor enrolment and password change.
// Shapes follow crates/http/api/src/auth.rs.
import { ApiError, apiJson, postJson } from './client';

/** A step the server requires before the session may use the platform. */
export type PendingStep = 'change-password' | 'enrol-second-factor';

/** `GET /api/auth/me` */
export interface Me {
  id: string;
  kind: string;
  name: string;
  roles: string[];
  actions: string[] | null;
  /** Code of the user's institution. */
  institution: string | null;
  /** The institution reads the whole region (consultation centre). */
  regional: boolean;
  pending: PendingStep[];
}

export interface LoginOk {
  user: { username: string; display_name: string; roles: string[]; second_factor: boolean };
  csrf_token: string;
  expires_at: number;
  pending: PendingStep[];
}

/** Why a sign-in was refused, as the login form explains it. */
export type LoginFailure =
  | { kind: 'invalid' }
  | { kind: 'code-required' }
  | { kind: 'code-invalid' }
  | { kind: 'locked'; until: number | null }
  | { kind: 'rate-limited'; retryAfterSeconds: number | null }
  | { kind: 'other'; message: string };

export class LoginError extends Error {
  constructor(public failure: LoginFailure) {
    super(failure.kind);
  }
}

/** Signs in; throws LoginError telling why it was refused. */
export async function login(username: string, password: string, code?: string): Promise<LoginOk> {
  const body: Record<string, string> = { username, password };
  if (code) body.code = code;
  const r = await fetch('/api/auth/login', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  }).catch(() => {
    throw new LoginError({ kind: 'other', message: 'network' });
  });
  if (r.ok) return (await r.json()) as LoginOk;
  const json = (await r.json().catch(() => null)) as
    | { error?: string; second_factor_required?: boolean; locked_until?: number }
    | null;
  if (r.status === 401) {
    if (json?.second_factor_required) {
      throw new LoginError({ kind: code ? 'code-invalid' : 'code-required' });
    }
    throw new LoginError({ kind: 'invalid' });
  }
  if (r.status === 423) throw new LoginError({ kind: 'locked', until: json?.locked_until ?? null });
  if (r.status === 429) {
    const after = Number(r.headers.get('Retry-After'));
    throw new LoginError({ kind: 'rate-limited', retryAfterSeconds: Number.isFinite(after) && after > 0 ? after : null });
  }
  throw new LoginError({ kind: 'other', message: json?.error ?? `${r.status} ${r.statusText}` });
}

/** Who is signed in, or null without a session. */
export async function me(): Promise<Me | null> {
  try {
    return await apiJson<Me>('/api/auth/me');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

export async function logout(): Promise<void> {
  try {
    await postJson('/api/auth/logout', {});
  } catch (e) {
    // Already signed out is what we wanted.
    if (!(e instanceof ApiError && (e.status === 401 || e.status === 403))) throw e;
  }
}

/** A new TOTP secret (base32) and its otpauth URI for an authenticator app. */
export function totpSetup(): Promise<{ secret: string; otpauth_uri: string }> {
  return postJson('/api/auth/totp/setup', {});
}

export function totpConfirm(code: string): Promise<{ second_factor: boolean }> {
  return postJson('/api/auth/totp/confirm', { code });
}

export function changePassword(current: string, next: string): Promise<{ changed: boolean }> {
  return postJson('/api/auth/password', { current, new: next });
}
