// The language switch (中文 / English), on the sign-in page and in the header.
import { LOCALES, useLocale, type Locale } from '../i18n';

const LABELS: Record<Locale, string> = { 'zh-CN': '中文', en: 'English' };

export function LocaleSwitch({ tone = 'dark' }: { tone?: 'dark' | 'light' }) {
  const { locale, setLocale } = useLocale();
  return (
    <div className={`locale-switch locale-switch--${tone}`} role="group" aria-label="Language / 语言" data-testid="locale-switch">
      {LOCALES.map((l) => (
        <button
          key={l}
          type="button"
          lang={l}
          aria-pressed={locale === l}
          className={locale === l ? 'is-active' : undefined}
          data-testid={`locale-${l}`}
          onClick={() => setLocale(l)}
        >
          {LABELS[l]}
        </button>
      ))}
    </div>
  );
}
