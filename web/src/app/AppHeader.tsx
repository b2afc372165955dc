// The dark header of the doctor pages: product name, the signed-in user and
// their institution, the language switch and signing out.
import type { MouseEvent } from 'react';
import { useLocale, useT, type Messages } from '../i18n';
import { navigate } from '../router';
import { LocaleSwitch } from './LocaleSwitch';
import { institutionName, useSession } from './session';

const messages: Messages<'home' | 'signOut' | 'regional'> = {
  'zh-CN': { home: '云影首页', signOut: '退出登录', regional: '区域会诊' },
  en: { home: 'Yunying home', signOut: 'Sign out', regional: 'Regional' },
};

export function BrandMark() {
  return (
    <span className="brand" data-testid="brand">
      <svg className="brand__logo" viewBox="0 0 64 64" aria-hidden="true">
        <rect width="64" height="64" rx="14" fill="#0e7490" />
        <path
          d="M14 40c0-7 6-12 13-12 2-6 8-10 14-10 8 0 14 6 14 14v1c4 1 7 4 7 8 0 5-4 8-9 8H21c-4 0-7-4-7-9z"
          fill="#e0f2fe"
          transform="translate(-4 -2) scale(0.95)"
        />
      </svg>
      <span className="brand__zh">云影</span>
      <span className="brand__en">Yunying</span>
    </span>
  );
}

function goHome(ev: MouseEvent) {
  if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  ev.preventDefault();
  if (location.pathname !== '/') navigate('/');
}

export function AppHeader() {
  const t = useT(messages);
  const { locale } = useLocale();
  const { user, institution, signOut } = useSession();
  const where = institutionName(institution, locale);
  return (
    <header className="app-header" data-testid="app-header">
      <a href="/" className="app-header__home" aria-label={t('home')} onClick={goHome}>
        <BrandMark />
      </a>
      <div className="app-header__spacer" />
      <div className="app-header__user" data-testid="header-user">
        <span className="app-header__name" data-testid="header-user-name">
          {user.name}
        </span>
        {where && (
          <span className="app-header__institution" data-testid="header-user-institution">
            {where}
            {user.regional && <span className="tag tag--accent">{t('regional')}</span>}
          </span>
        )}
      </div>
      <LocaleSwitch />
      <button type="button" className="btn btn--ghost-dark" data-testid="logout" onClick={() => void signOut()}>
        {t('signOut')}
      </button>
    </header>
  );
}
