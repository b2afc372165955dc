// Second-factor enrolment: asks the server for a new TOTP secret, shows it as
// a QR code and in groups of four for typing, and confirms with a first code.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { totpConfirm, totpSetup } from '../../api/auth';
import { ApiError } from '../../api/client';
import { useLocale, useT, type Messages } from '../../i18n';
import { QrCode } from '../qr/QrCode';
import { localizedServerMessage } from '../serverMessage';

const messages: Messages<
  | 'title'
  | 'why'
  | 'step1'
  | 'step2'
  | 'secret'
  | 'uri'
  | 'copy'
  | 'copied'
  | 'code'
  | 'codeHint'
  | 'confirm'
  | 'confirming'
  | 'wrongCode'
  | 'loading'
  | 'setupFailed'
  | 'retry'
  | 'qrLabel'
  | 'openApp'
> = {
  'zh-CN': {
    title: '绑定动态口令',
    why: '此账户需要双因素认证：登录时除密码外，还需输入身份验证器 App 生成的 6 位动态验证码。',
    step1: '1. 用身份验证器 App（如 Microsoft Authenticator、Google Authenticator、FreeOTP）扫描二维码，或手动输入下面的密钥。',
    step2: '2. 输入 App 显示的 6 位验证码完成绑定。',
    secret: '密钥',
    uri: '显示 otpauth 链接',
    copy: '复制密钥',
    copied: '已复制',
    code: '验证码',
    codeHint: '6 位数字，每 30 秒更新',
    confirm: '完成绑定',
    confirming: '正在验证…',
    wrongCode: '验证码错误，请核对手机时间并输入最新的验证码',
    loading: '正在生成密钥…',
    setupFailed: '无法开始绑定：{error}',
    retry: '重试',
    qrLabel: '动态口令二维码',
    openApp: '在本机身份验证器中打开',
  },
  en: {
    title: 'Set up the second factor',
    why: 'This account requires two-factor authentication: besides the password, sign-in asks for the 6-digit code of an authenticator app.',
    step1: '1. Scan the QR code with an authenticator app (Microsoft Authenticator, Google Authenticator, FreeOTP…) or type the key below.',
    step2: '2. Enter the 6-digit code the app shows to finish.',
    secret: 'Key',
    uri: 'Show the otpauth link',
    copy: 'Copy key',
    copied: 'Copied',
    code: 'Code',
    codeHint: '6 digits, renewed every 30 seconds',
    confirm: 'Finish set-up',
    confirming: 'Checking…',
    wrongCode: 'Wrong code: check the phone’s clock and enter the latest code',
    loading: 'Creating a key…',
    setupFailed: 'Cannot start the set-up: {error}',
    retry: 'Retry',
    qrLabel: 'QR code of the second factor',
    openApp: 'Open in an authenticator on this device',
  },
};

/** "JBSWY3DPEHPK3PXP" → "JBSW Y3DP EHPK 3PXP". */
export function groupSecret(secret: string): string {
  return secret.replace(/\s+/g, '').replace(/(.{4})(?=.)/g, '$1 ');
}

export function TotpEnrolment({ onDone }: { onDone: () => void }) {
  const t = useT(messages);
  const { locale } = useLocale();
  const [setup, setSetup] = useState<{ secret: string; otpauth_uri: string } | null>(null);
  const [setupError, setSetupError] = useState<string | null>(null);
  const [code, setCode] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [copied, setCopied] = useState(false);
  const started = useRef(false);

  const begin = () => {
    setSetupError(null);
    totpSetup()
      .then(setSetup)
      .catch((e: unknown) => setSetupError(e instanceof Error ? localizedServerMessage(e.message, locale) : String(e)));
  };

  useEffect(() => {
    if (started.current) return;
    started.current = true;
    begin();
  }, []);

  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    const c = code.replace(/\s+/g, '');
    if (!/^\d{6}$/.test(c)) {
      setError(t('codeHint'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await totpConfirm(c);
      onDone();
    } catch (e) {
      if (e instanceof ApiError && e.status === 400) setError(t('wrongCode'));
      else setError(e instanceof Error ? localizedServerMessage(e.message, locale) : String(e));
      setCode('');
    } finally {
      setBusy(false);
    }
  };

  const copy = () => {
    if (!setup) return;
    void navigator.clipboard?.writeText(setup.secret).then(() => {
      setCopied(true);
      setTimeout(() => setCopied(false), 2000);
    });
  };

  return (
    <section className="card step-card" data-testid="totp-enrolment" aria-labelledby="totp-title">
      <h1 id="totp-title">{t('title')}</h1>
      <p className="muted">{t('why')}</p>
      <p>{t('step1')}</p>
      {setupError && (
        <div className="alert alert--error" role="alert" data-testid="totp-setup-error">
          {t('setupFailed', { error: setupError })}{' '}
          <button type="button" className="btn btn--small" onClick={begin}>
            {t('retry')}
          </button>
        </div>
      )}
      {!setup && !setupError && <p className="muted">{t('loading')}</p>}
      {setup && (
        <div className="totp-key">
          <QrCode text={setup.otpauth_uri} label={t('qrLabel')} testId="totp-qr" />
          <div className="totp-key__text">
            <div className="field-label">{t('secret')}</div>
            <code className="totp-secret" data-testid="totp-secret" data-secret={setup.secret}>
              {groupSecret(setup.secret)}
            </code>
            <button type="button" className="btn btn--small" onClick={copy}>
              {copied ? t('copied') : t('copy')}
            </button>
            <a className="btn btn--small" href={setup.otpauth_uri} data-testid="totp-open-app">
              {t('openApp')}
            </a>
            <details className="totp-uri">
              <summary>{t('uri')}</summary>
              <code data-testid="totp-uri">{setup.otpauth_uri}</code>
            </details>
          </div>
        </div>
      )}
      <form className="stack" onSubmit={submit} noValidate>
        <p>{t('step2')}</p>
        <label className="field">
          <span className="field-label">{t('code')}</span>
          <input
            className="input input--code"
            data-testid="totp-code"
            inputMode="numeric"
            autoComplete="one-time-code"
            maxLength={7}
            value={code}
            onChange={(e) => setCode(e.target.value)}
            aria-describedby="totp-code-hint"
            disabled={!setup}
          />
          <span id="totp-code-hint" className="field-hint">
            {t('codeHint')}
          </span>
        </label>
        {error && (
          <div className="alert alert--error" role="alert" data-testid="totp-error">
            {error}
          </div>
        )}
        <button type="submit" className="btn btn--primary" data-testid="totp-confirm" disabled={!setup || busy}>
          {busy ? t('confirming') : t('confirm')}
        </button>
      </form>
    </section>
  );
}
