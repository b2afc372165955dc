// The server writes its messages as "English / 中文": pick the half of the
// user's language.
import type { Locale } from '../i18n';

const CJK = /[\u3400-\u9fff]/;

export function localizedServerMessage(message: string, locale: Locale): string {
  const parts = message.split(' / ').map((p) => p.trim()).filter(Boolean);
  if (parts.length < 2) return message;
  const zh = parts.find((p) => CJK.test(p));
  const en = parts.find((p) => !CJK.test(p));
  return (locale === 'zh-CN' ? zh ?? en : en ?? zh) ?? message;
}
