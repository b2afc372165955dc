// The one HTTP client of the web app: same-origin requests with the session
// cookie, the CSRF token (cookie yy_csrf echoed in X-CSRF-Token) on every
// state-changing request, and errors carrying the server's message.

export class ApiError extends Error {
  constructor(public status: number, message: string, public body?: unknown) {
    super(message);
  }
}

export function csrfToken(): string | undefined {
  return document.cookie
    .split(';')
    .map((c) => c.trim())
    .find((c) => c.startsWith('yy_csrf='))
    ?.slice('yy_csrf='.length);
}

/** fetch() for the server's APIs: adds the CSRF header, throws ApiError on 4xx/5xx. */
export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const method = (init.method ?? 'GET').toUpperCase();
  const headers = new Headers(init.headers);
  if (method !== 'GET' && method !== 'HEAD') {
    const t = csrfToken();
    if (t) headers.set('X-CSRF-Token', t);
  }
  const r = await fetch(path, { ...init, headers, credentials: 'same-origin' });
  if (!r.ok) {
    // A session that ended (idle time-out, signed out elsewhere): the
    // session guard (app/session.tsx) takes the user back to sign-in.
    if (r.status === 401 && typeof window !== 'undefined' && !path.startsWith('/api/auth/login') && !path.startsWith('/api/auth/me')) {
      window.dispatchEvent(new Event('yunying:session-expired'));
    }
    let body: unknown;
    let message = `${r.status} ${r.statusText}`;
    try {
      body = await r.clone().json();
      const m = (body as { error?: string })?.error;
      if (m) message = m;
    } catch {
      const text = await r.text().catch(() => '');
      if (text) message = text.trim();
    }
    throw new ApiError(r.status, message, body);
  }
  return r;
}

/** JSON of a successful request (204 gives null). */
export async function apiJson<T>(path: string, init: RequestInit = {}): Promise<T> {
  const r = await apiFetch(path, init);
  if (r.status === 204) return null as T;
  return (await r.json()) as T;
}

/** POST a JSON body. */
export function postJson<T>(path: string, body: unknown): Promise<T> {
  return apiJson<T>(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
}
