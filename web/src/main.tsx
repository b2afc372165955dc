// Entry of the web app: locale, session and the route table.
import { createRoot } from 'react-dom/client';
import { LocaleProvider } from './i18n';
import { AppRoutes } from './router';
import './app/app.css';

createRoot(document.getElementById('root')!).render(
  <LocaleProvider>
    <AppRoutes />
  </LocaleProvider>,
);
