// The sign-in page (/login): user name and password, then the TOTP code when
// the server asks for it; explains every refusal (wrong password, locked
// account, wrong code, too many attempts) and returns to `next` afterwards.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { login, LoginError, me, type LoginFailure } from '../api/auth';
import { useLocale, useT, type Locale, type Messages } from '../i18n';
import { navigate } from '../router';
import { BrandMark } from './AppHeader';
import { LocaleSwitch } from './LocaleSwitch';
import { safeNext } from './sessionEvents';

type Key =
  | 'title'
  | 'subtitle'
  | 'username'
  | 'password'
  | 'code'
  | 'codePrompt'
  | 'codeHint'
  | 'submit'
  | 'verify'
  | 'busy'
  | 'back'
  | 'expired'
  | 'signedOut'
  | 'invalid'
  | 'codeInvalid'
  | 'codeFormat'
  | 'locked'
  | 'lockedNoTime'
  | 'rateLimited'
  | 'rateLimitedNoTime'
  | 'network'
  | 'other'
  | 'required'
  | 'footer';

const messages: Messages<Key> = {
  'zh-CN': {
    title: '登录',
    subtitle: '区域影像云平台',
    username: '用户名',
    password: '密码',
    code: '动态验证码',
    codePrompt: '请输入身份验证器 App 中显示的 6 位动态验证码。',
    codeHint: '6 位数字，每 30 秒更新',
    submit: '登录',
    verify: '验证并登录',
    busy: '正在登录…',
    back: '使用其他账户',
    expired: '登录已过期，请重新登录。',
    signedOut: '您已退出登录。',
    invalid: '用户名或密码错误。',
    codeInvalid: '验证码错误或已使用，请输入身份验证器中最新的验证码。',
    codeFormat: '请输入 6 位数字验证码。',
    locked: '账户因多次登录失败已锁定，请于 {time} 后再试，或联系安全管理员解锁。',
    lockedNoTime: '账户因多次登录失败已锁定，请稍后再试，或联系安全管理员解锁。',
    rateLimited: '尝试过于频繁，请 {seconds} 秒后再试。',
    rateLimitedNoTime: '尝试过于频繁，请稍后再试。',
    network: '无法连接服务器，请检查网络后重试。',
    other: '登录失败：{message}',
    required: '请输入用户名和密码。',
    footer: '仅限授权医务人员使用，所有访问均被审计记录。',
  },
  en: {
    title: 'Sign in',
    subtitle: 'Regional imaging cloud',
    username: 'User name',
    password: 'Password',
    code: 'Verification code',
    codePrompt: 'Enter the 6-digit code shown by your authenticator app.',
    codeHint: '6 digits, renewed every 30 seconds',
    submit: 'Sign in',
    verify: 'Verify and sign in',
    busy: 'Signing in…',
    back: 'Use another account',
    expired: 'Your session has expired. Please sign in again.',
    signedOut: 'You have signed out.',
    invalid: 'Wrong user name or password.',
    codeInvalid: 'Wrong or already used code. Enter the latest code of your authenticator app.',
    codeFormat: 'Enter the 6-digit code.',
    locked: 'The account is locked after repeated failures. Try again after {time}, or ask the security administrator to unlock it.',
    lockedNoTime: 'The account is locked after repeated failures. Try again later, or ask the security administrator to unlock it.',
    rateLimited: 'Too many attempts. Try again in {seconds} seconds.',
    rateLimitedNoTime: 'Too many attempts. Try again later.',
    network: 'Cannot reach the server. Check the network and try again.',
    other: 'Sign-in failed: {message}',
    required: 'Enter your user name and password.',
    footer: 'For authorised medical staff only. All access is audited.',
  },
};

function formatTime(ms: number, locale: Locale): string {
  const d = new Date(ms);
  const sameDay = new Date().toDateString() === d.toDateString();
  return d.toLocaleString(locale, sameDay ? { hour: '2-digit', minute: '2-digit' } : { dateStyle: 'medium', timeStyle: 'short' });
}

function failureText(f: LoginFailure, t: ReturnType<typeof useT<Key>>, locale: Locale): string {
  switch (f.kind) {
    case 'invalid':
      return t('invalid');
    case 'code-required':
      return '';
    case 'code-invalid':
      return t('codeInvalid');
    case 'locked':
      return f.until ? t('locked', { time: formatTime(f.until, locale) }) : t('lockedNoTime');
    case 'rate-limited':
      return f.retryAfterSeconds ? t('rateLimited', { seconds: f.retryAfterSeconds }) : t('rateLimitedNoTime');
    case 'other':
      return f.message === 'network' ? t('network') : t('other', { message: f.message });
  }
}

export function LoginPage() {
  const t = useT(messages);
  const { locale } = useLocale();
  const params = new URLSearchParams(location.search);
  const next = safeNext(params.get('next'));
  const reason = params.get('reason');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [stage, setStage] = useState<'password' | 'code'>('password');
  const [failure, setFailure] = useState<LoginFailure | null>(null);
  const [localError, setLocalError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const codeRef = useRef<HTMLInputElement>(null);
  const passwordRef = useRef<HTMLInputElement>(null);

  // Already signed in (a bookmarked /login): go on.
  useEffect(() => {
    if (reason) return;
    let live = true;
    me()
      .then((u) => {
        if (live && u) navigate(next, { replace: true });
      })
      .catch(() => {});
    return () => {
      live = false;
    };
  }, [next, reason]);

  useEffect(() => {
    if (stage === 'code') codeRef.current?.focus();
  }, [stage]);

  useEffect(() => {
    document.title = `${t('title')} · 云影 Yunying`;
  }, [t]);

  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    setLocalError(null);
    if (!username.trim() || !password) {
      setLocalError(t('required'));
      return;
    }
    const c = code.replace(/\s+/g, '');
    if (stage === 'code' && !/^\d{6}$/.test(c)) {
      setLocalError(t('codeFormat'));
      return;
    }
    setBusy(true);
    setFailure(null);
    try {
      await login(username.trim(), password, stage === 'code' ? c : undefined);
      navigate(next, { replace: true });
    } catch (e) {
      const f: LoginFailure = e instanceof LoginError ? e.failure : { kind: 'other', message: String(e) };
      if (f.kind === 'code-required' || f.kind === 'code-invalid') {
        setStage('code');
        setCode('');
        setTimeout(() => codeRef.current?.focus(), 0);
      } else if (f.kind === 'invalid') {
        setStage('password');
        setPassword('');
        passwordRef.current?.focus();
      }
      setFailure(f);
    } finally {
      setBusy(false);
    }
  };

  const back = () => {
    setStage('password');
    setCode('');
    setPassword('');
    setFailure(null);
    setLocalError(null);
  };

  const error = localError ?? (failure ? failureText(failure, t, locale) : '');
  const notice = reason === 'expired' ? t('expired') : reason === 'signed-out' ? t('signedOut') : '';

  return (
    <div className="login-page" data-testid="login-page">
      <div className="login-page__top">
        <LocaleSwitch tone="light" />
      </div>
      <main className="login-card card">
        <div className="login-card__brand">
          <BrandMark />
          <span className="login-card__subtitle">{t('subtitle')}</span>
        </div>
        <h1 className="login-card__title">{t('title')}</h1>
        {notice && !failure && (
          <div className="alert alert--info" role="status" data-testid="login-notice">
            {notice}
          </div>
        )}
        <form className="stack" onSubmit={submit} noValidate data-testid="login-form" data-stage={stage}>
          <label className="field">
            <span className="field-label">{t('username')}</span>
            <input
              className="input"
              name="username"
              autoComplete="username"
              autoCapitalize="none"
              spellCheck={false}
              autoFocus
              value={username}
              readOnly={stage === 'code'}
              data-testid="login-username"
              onChange={(e) => setUsername(e.target.value)}
            />
          </label>
          <label className="field" hidden={stage === 'code'}>
            <span className="field-label">{t('password')}</span>
            <input
              ref={passwordRef}
              className="input"
              type="password"
              name="password"
              autoComplete="current-password"
              value={password}
              data-testid="login-password"
              onChange={(e) => setPassword(e.target.value)}
            />
          </label>
          {stage === 'code' && (
            <div className="stack stack--tight">
              <p className="muted" data-testid="login-code-prompt">
                {t('codePrompt')}
              </p>
              <label className="field">
                <span className="field-label">{t('code')}</span>
                <input
                  ref={codeRef}
                  className="input input--code"
                  name="code"
                  inputMode="numeric"
                  autoComplete="one-time-code"
                  maxLength={7}
                  value={code}
                  data-testid="login-code"
                  aria-describedby="login-code-hint"
                  onChange={(e) => setCode(e.target.value)}
                />
                <span id="login-code-hint" className="field-hint">
                  {t('codeHint')}
                </span>
              </label>
            </div>
          )}
          {error && (
            <div className="alert alert--error" role="alert" data-testid="login-error" data-kind={localError ? 'form' : failure?.kind}>
              {error}
            </div>
          )}
          <button type="submit" className="btn btn--primary btn--block" disabled={busy} data-testid="login-submit">
            {busy ? t('busy') : stage === 'code' ? t('verify') : t('submit')}
          </button>
          {stage === 'code' && (
            <button type="button" className="btn btn--link" onClick={back} data-testid="login-back">
              {t('back')}
            </button>
          )}
        </form>
      </main>
      <footer className="login-page__footer muted">{t('footer')}</footer>
    </div>
  );
}
