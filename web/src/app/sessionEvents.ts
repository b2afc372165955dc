// The one signal that the session has ended under the page (an API call
// answered 401): whoever sees it reports it, RequireSession sends the user
// to the sign-in page with a message.
const EVENT = 'yunying:session-expired';

export function reportSessionExpired() {
  window.dispatchEvent(new Event(EVENT));
}

export function onSessionExpired(handler: () => void): () => void {
  window.addEventListener(EVENT, handler);
  return () => window.removeEventListener(EVENT, handler);
}

/** The sign-in URL that comes back to the current page afterwards. */
export function loginUrl({ expired = false } = {}): string {
  const p = new URLSearchParams();
  const here = location.pathname + location.search;
  if (here !== '/' && location.pathname !== '/login') p.set('next', here);
  if (expired) p.set('reason', 'expired');
  const qs = p.toString();
  return qs ? `/login?${qs}` : '/login';
}

/** A same-origin path to go to after signing in (never another site). */
export function safeNext(next: string | null): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\') || next.startsWith('/login')) return '/';
  return next;
}
