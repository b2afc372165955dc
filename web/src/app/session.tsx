// The signed-in session of every page but /login: RequireSession asks the
// server who is signed in (GET /api/auth/me), sends strangers to the sign-in
// page (?next= brings them back), shows the steps the server still requires
// (second-factor enrolment, password change) before anything else, and
// provides the user and the member institutions through useSession().
// When any call later answers 401 it returns to sign-in with a message.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { logout as apiLogout, me as apiMe, type Me } from '../api/auth';
import { ApiError } from '../api/client';
import { listInstitutions, type Institution } from '../api/studies';
import { useT, type Locale, type Messages } from '../i18n';
import { navigate } from '../router';
import { PendingSteps } from './signin/PendingSteps';
import { loginUrl, onSessionExpired, reportSessionExpired } from './sessionEvents';

export interface Session {
  user: Me;
  /** The member institutions (empty when they could not be read). */
  institutions: Institution[];
  /** The user's own institution, when they belong to one. */
  institution: Institution | null;
  /** Asks the server again (after a step was done). */
  refresh: () => Promise<void>;
  signOut: () => Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

/** The current session; only inside RequireSession. */
export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside RequireSession');
  return s;
}

/** The name of an institution in the UI language. */
export function institutionName(i: Institution | null | undefined, locale: Locale): string {
  if (!i) return '';
  return locale === 'en' ? i.name_en || i.name_zh || i.code : i.name_zh || i.name_en || i.code;
}

const messages: Messages<'loading' | 'failed' | 'retry' | 'signIn'> = {
  'zh-CN': {
    loading: '正在加载…',
    failed: '无法连接服务器：{error}',
    retry: '重试',
    signIn: '重新登录',
  },
  en: {
    loading: 'Loading…',
    failed: 'Cannot reach the server: {error}',
    retry: 'Retry',
    signIn: 'Sign in again',
  },
};

type State =
  | { status: 'loading' }
  | { status: 'ready'; user: Me; institutions: Institution[] }
  | { status: 'error'; message: string };

export function RequireSession({ children }: { children: ReactNode }) {
  const t = useT(messages);
  const [state, setState] = useState<State>({ status: 'loading' });
  const institutionsRef = useRef<Institution[] | null>(null);

  const load = useCallback(async () => {
    try {
      const user = await apiMe();
      if (!user) {
        navigate(loginUrl(), { replace: true });
        return;
      }
      if (!institutionsRef.current && user.pending.length === 0) {
        institutionsRef.current = await listInstitutions().catch(() => null);
      }
      setState({ status: 'ready', user, institutions: institutionsRef.current ?? [] });
    } catch (e) {
      setState({ status: 'error', message: e instanceof Error ? e.message : String(e) });
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  // A 401 anywhere: the session ended (idle time-out, signed out elsewhere).
  useEffect(
    () =>
      onSessionExpired(() => {
        navigate(loginUrl({ expired: true }), { replace: true });
      }),
    [],
  );

  // Coming back to a tab after a long time: check the session is still alive.
  useEffect(() => {
    const check = () => {
      if (document.visibilityState !== 'visible') return;
      apiMe()
        .then((u) => {
          if (!u) reportSessionExpired();
        })
        .catch(() => {});
    };
    document.addEventListener('visibilitychange', check);
    return () => document.removeEventListener('visibilitychange', check);
  }, []);

  const signOut = useCallback(async () => {
    await apiLogout().catch(() => {});
    navigate('/login?reason=signed-out', { replace: true });
  }, []);

  const session = useMemo<Session | null>(() => {
    if (state.status !== 'ready') return null;
    const institution = state.institutions.find((i) => i.code === state.user.institution) ?? null;
    return { user: state.user, institutions: state.institutions, institution, refresh: load, signOut };
  }, [state, load, signOut]);

  // The viewer is dark; the other pages are light: no flash of the wrong one.
  const loadingClass = location.pathname === '/viewer' ? 'page-loading' : 'page-loading page-loading--light';
  if (state.status === 'loading') {
    return (
      <div className={loadingClass} data-testid="session-loading" aria-busy="true">
        <span className="spinner" aria-hidden="true" />
        <span>{t('loading')}</span>
      </div>
    );
  }
  if (state.status === 'error') {
    return (
      <div className={loadingClass} role="alert" data-testid="session-error">
        <p>{t('failed', { error: state.message })}</p>
        <button type="button" className="btn" onClick={() => void load()}>
          {t('retry')}
        </button>
      </div>
    );
  }
  if (!session) return null;
  return (
    <SessionContext.Provider value={session}>
      {session.user.pending.length > 0 ? <PendingSteps /> : children}
    </SessionContext.Provider>
  );
}

/**
 * Reports an API failure that means the session is gone (401) or still owes
 * a step (403 with `pending`); returns true when it did.
 */
export function handleSessionError(e: unknown, refresh?: () => Promise<void>): boolean {
  if (!(e instanceof ApiError)) return false;
  if (e.status === 401) {
    reportSessionExpired();
    return true;
  }
  const pending = (e.body as { pending?: unknown } | undefined)?.pending;
  if (e.status === 403 && Array.isArray(pending) && pending.length && refresh) {
    void refresh();
    return true;
  }
  return false;
}
