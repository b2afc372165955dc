// The route table. Plain history API paths (the server answers index.html
// for every page path): /login, / (study list), /viewer?StudyInstanceUIDs=…
// (the parameter OHIF uses). The viewer is a separate chunk, loaded on demand.
import { lazy, Suspense, useEffect, useState } from 'react';
import { LoginPage } from './app/LoginPage';
import { StudyListPage } from './app/StudyListPage';
import { RequireSession } from './app/session';

const loadViewerPage = () => import('./viewer/ViewerPage');
// Opened straight at /viewer (a link, a QR code): fetch the viewer's code and
// start its study queries now, while the session is being checked, not after.
if (location.pathname === '/viewer') void loadViewerPage();
const ViewerPage = lazy(loadViewerPage);

/** Navigates without a reload (pushState) and re-renders the routes. */
export function navigate(to: string, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  window.dispatchEvent(new PopStateEvent('popstate'));
}

function usePath() {
  const [path, setPath] = useState(() => location.pathname);
  useEffect(() => {
    const on = () => setPath(location.pathname);
    window.addEventListener('popstate', on);
    return () => window.removeEventListener('popstate', on);
  }, []);
  return path;
}

export function AppRoutes() {
  const path = usePath();
  if (path === '/login') return <LoginPage />;
  if (path === '/viewer') {
    return (
      <RequireSession>
        <Suspense fallback={<div className="page-loading" data-testid="viewer-loading" />}>
          <ViewerPage />
        </Suspense>
      </RequireSession>
    );
  }
  return (
    <RequireSession>
      <StudyListPage />
    </RequireSession>
  );
}
