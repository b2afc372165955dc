// The study list (/): the doctor's search over the studies they may read,
// with its state in the URL, results as a table (cards on phones), paging,
// and a row that opens the viewer.
import { useCallback, useEffect, useMemo, useState } from 'react';
import { ApiError } from '../api/client';
import { searchStudies, type StudyPage, type StudyQuery } from '../api/studies';
import { useLocale, useT } from '../i18n';
import { navigate } from '../router';
import { AppHeader } from './AppHeader';
import { localizedServerMessage } from './serverMessage';
import { handleSessionError, useSession } from './session';
import { studyListMessages } from './studies/messages';
import { Pager } from './studies/Pager';
import { activeFilterCount, EMPTY_QUERY, queryFromSearch, searchFromQuery } from './studies/searchParams';
import { SearchForm } from './studies/SearchForm';
import { StudyTable } from './studies/StudyTable';

/** Roles that administer the platform and, by design, never see patient data. */
const ADMIN_ROLES = ['system-admin', 'security-admin', 'audit-admin'];

/** The answer to one search; `key` names the search it answers. */
type Result =
  | { status: 'loading'; previous: StudyPage | null }
  | { status: 'done'; key: string; page: StudyPage }
  | { status: 'error'; key: string; message: string; forbidden: boolean };

function useLocationSearch(): string {
  const [search, setSearch] = useState(() => location.search);
  useEffect(() => {
    const on = () => setSearch(location.search);
    window.addEventListener('popstate', on);
    return () => window.removeEventListener('popstate', on);
  }, []);
  return search;
}

export function StudyListPage() {
  const t = useT(studyListMessages);
  const { locale } = useLocale();
  const { user, institutions, refresh } = useSession();
  const search = useLocationSearch();
  const query = useMemo(() => queryFromSearch(search), [search]);
  const [result, setResult] = useState<Result>({ status: 'loading', previous: null });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    document.title = `${t('pageTitle')} · 云影 Yunying`;
  }, [t]);

  // A new search goes into the history; the same one again searches anew
  // (new studies may have arrived).
  const apply = useCallback((q: StudyQuery) => {
    const next = `/${searchFromQuery(q)}`;
    if (next !== location.pathname + location.search) navigate(next);
    else setAttempt((a) => a + 1);
  }, []);

  const administrator = user.roles.length > 0 && user.roles.every((r) => ADMIN_ROLES.includes(r));
  const requestKey = `${searchFromQuery(query)}#${attempt}`;

  useEffect(() => {
    if (administrator) return;
    const controller = new AbortController();
    setResult((r) => ({ status: 'loading', previous: r.status === 'done' ? r.page : r.status === 'loading' ? r.previous : null }));
    const institutionNames = institutions.filter((i) => query.institutions.includes(i.code)).map((i) => i.name_zh);
    searchStudies(query, { signal: controller.signal, institutionNames })
      .then((page) => {
        // Past the last page (a stale link): go to the last one that has studies.
        if (page.studies.length === 0 && query.page > 1) {
          const last = page.total !== null ? Math.max(1, Math.ceil(page.total / query.pageSize)) : 1;
          navigate(`/${searchFromQuery({ ...query, page: Math.min(last, query.page - 1) })}`, { replace: true });
          return;
        }
        setResult({ status: 'done', key: requestKey, page });
      })
      .catch((e: unknown) => {
        if (controller.signal.aborted) return;
        if (handleSessionError(e, refresh)) return;
        const forbidden = e instanceof ApiError && e.status === 403;
        const message = e instanceof Error ? localizedServerMessage(e.message, locale) : String(e);
        setResult({ status: 'error', key: requestKey, message, forbidden });
      });
    return () => controller.abort();
    // locale only changes the error text; no new search for it.
  }, [query, institutions, refresh, attempt, administrator, requestKey]);

  if (administrator) {
    return (
      <div className="app-shell app-shell--light">
        <AppHeader />
        <main className="study-page" data-testid="study-list-page">
          <div className="empty" data-testid="admin-notice">
            <p className="empty__title">{t('adminTitle')}</p>
            <p className="muted">{t('adminHint')}</p>
          </div>
        </main>
      </div>
    );
  }

  // Until the answer to the current search is in, the list is loading
  // (and shows the previous answer dimmed).
  const settled = result.status !== 'loading' && result.key === requestKey;
  const state = settled ? result.status : 'loading';
  const page = result.status === 'done' ? result.page : result.status === 'loading' ? result.previous : null;
  const busy = state === 'loading';

  return (
    <div className="app-shell app-shell--light">
      <AppHeader />
      <main className="study-page" data-testid="study-list-page">
        <h1 className="visually-hidden">{t('pageTitle')}</h1>
        <SearchForm query={query} institutions={institutions} showInstitution={user.regional} onApply={apply} />
        <section className="results" aria-label={t('results')} aria-busy={busy} data-testid="study-results" data-state={state} data-location={search}>
          {settled && result.status === 'error' && (
            <div className="alert alert--error results__message" role="alert" data-testid="study-error">
              <span>{result.forbidden ? t('forbidden') : t('error', { error: result.message })}</span>
              {!result.forbidden && (
                <button type="button" className="btn btn--small" onClick={() => setAttempt((a) => a + 1)}>
                  {t('retry')}
                </button>
              )}
            </div>
          )}
          {busy && !page && (
            <div className="results__message muted" data-testid="study-loading">
              <span className="spinner" aria-hidden="true" /> {t('loading')}
            </div>
          )}
          {settled && page && page.studies.length === 0 && (
            <div className="empty" data-testid="study-empty">
              <svg viewBox="0 0 48 48" width="48" height="48" aria-hidden="true">
                <rect x="6" y="10" width="36" height="28" rx="4" fill="none" stroke="currentColor" strokeWidth="2" />
                <path d="M6 30h10l3 4h10l3-4h10" fill="none" stroke="currentColor" strokeWidth="2" />
              </svg>
              <p className="empty__title">{t('empty')}</p>
              <p className="muted">{t('emptyHint')}</p>
              {activeFilterCount(query) > 0 && (
                <button
                  type="button"
                  className="btn btn--small empty__action"
                  data-testid="empty-reset"
                  onClick={() => apply({ ...EMPTY_QUERY, pageSize: query.pageSize })}
                >
                  {t('reset')}
                </button>
              )}
            </div>
          )}
          {page && page.studies.length > 0 && (
            <>
              {!page.sortedByServer && <p className="results__note muted">{t('pageOnlySort')}</p>}
              <div className="table-scroll">
                <StudyTable
                  studies={page.studies}
                  sort={query.sort}
                  onSort={(sort) => apply({ ...query, sort, page: 1 })}
                  institutions={institutions}
                  busy={busy}
                />
              </div>
            </>
          )}
          {page && (page.studies.length > 0 || query.page > 1) && (
            <Pager
              page={query.page}
              pageSize={query.pageSize}
              total={page.total}
              shown={page.studies.length}
              hasNext={page.hasNext}
              busy={busy}
              onPage={(p) => apply({ ...query, page: p })}
              onPageSize={(size) => apply({ ...query, pageSize: size, page: 1 })}
            />
          )}
        </section>
      </main>
    </div>
  );
}
