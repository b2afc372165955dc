// Changing one's own password when the server requires it (expired or
// temporary password): current password, the new one twice.
import { useState, type FormEvent } from 'react';
import { changePassword } from '../../api/auth';
import { ApiError } from '../../api/client';
import { useLocale, useT, type Messages } from '../../i18n';
import { localizedServerMessage } from '../serverMessage';

const messages: Messages<
  'title' | 'why' | 'current' | 'next' | 'again' | 'rules' | 'mismatch' | 'wrongCurrent' | 'submit' | 'saving'
> = {
  'zh-CN': {
    title: '修改密码',
    why: '您的密码已过期或是临时密码，请先设置新密码。',
    current: '当前密码',
    next: '新密码',
    again: '再次输入新密码',
    rules: '需满足密码规则（长度、大小写字母/数字/符号的种类），且不能包含用户名；不符合时会说明原因。',
    mismatch: '两次输入的新密码不一致',
    wrongCurrent: '当前密码错误',
    submit: '保存新密码',
    saving: '正在保存…',
  },
  en: {
    title: 'Change your password',
    why: 'Your password has expired or is temporary: set a new one first.',
    current: 'Current password',
    next: 'New password',
    again: 'New password again',
    rules: 'It must meet the password rules (length; kinds of characters: upper and lower case, digits, symbols) and not contain the user name; you will be told what is missing.',
    mismatch: 'The two new passwords differ',
    wrongCurrent: 'The current password is wrong',
    submit: 'Save the new password',
    saving: 'Saving…',
  },
};

export function PasswordChange({ onDone }: { onDone: () => void }) {
  const t = useT(messages);
  const { locale } = useLocale();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    if (next !== again) {
      setError(t('mismatch'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await changePassword(current, next);
      onDone();
    } catch (e) {
      if (e instanceof ApiError && e.status === 403) setError(t('wrongCurrent'));
      else setError(e instanceof Error ? localizedServerMessage(e.message, locale) : String(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card step-card" data-testid="password-change" aria-labelledby="pw-title">
      <h1 id="pw-title">{t('title')}</h1>
      <p className="muted">{t('why')}</p>
      <form className="stack" onSubmit={submit}>
        <label className="field">
          <span className="field-label">{t('current')}</span>
          <input className="input" type="password" autoComplete="current-password" required value={current}
            data-testid="password-current" onChange={(e) => setCurrent(e.target.value)} />
        </label>
        <label className="field">
          <span className="field-label">{t('next')}</span>
          <input className="input" type="password" autoComplete="new-password" required value={next}
            data-testid="password-new" aria-describedby="pw-rules" onChange={(e) => setNext(e.target.value)} />
          <span id="pw-rules" className="field-hint">{t('rules')}</span>
        </label>
        <label className="field">
          <span className="field-label">{t('again')}</span>
          <input className="input" type="password" autoComplete="new-password" required value={again}
            data-testid="password-again" onChange={(e) => setAgain(e.target.value)} />
        </label>
        {error && (
          <div className="alert alert--error" role="alert" data-testid="password-error">
            {error}
          </div>
        )}
        <button type="submit" className="btn btn--primary" data-testid="password-submit" disabled={busy}>
          {busy ? t('saving') : t('submit')}
        </button>
      </form>
    </section>
  );
}
