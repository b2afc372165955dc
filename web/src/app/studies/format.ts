// How study attributes read in the list: person names (Chinese and Latin
// component groups), DICOM dates and times, sex and age.
import type { Locale } from '../../i18n';
import type { PersonName } from '../../api/studies';
import { CJK, personNameGroup as group } from '../../dicom/personName';

/** The name to show first and, when it differs, the other script. */
export function displayName(pn: PersonName, locale: Locale): { primary: string; secondary: string } {
  const alphabetic = group(pn.alphabetic);
  const ideographic = group(pn.ideographic);
  const chinese = [ideographic, alphabetic].find((n) => CJK.test(n)) ?? '';
  const latin = [alphabetic, ideographic, group(pn.phonetic)].find((n) => n && !CJK.test(n)) ?? '';
  const [primary, secondary] = locale === 'zh-CN' ? [chinese || latin, latin] : [latin || chinese, chinese];
  return { primary, secondary: secondary && secondary !== primary ? secondary : '' };
}

/** "20250314" → "2025-03-14". */
export function formatDate(da: string): string {
  const d = da.replace(/\D/g, '');
  return d.length === 8 ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}` : da;
}

/** "093015.123" → "09:30". */
export function formatTime(tm: string): string {
  const t = tm.replace(/:/g, '');
  return /^\d{4}/.test(t) ? `${t.slice(0, 2)}:${t.slice(2, 4)}` : '';
}

/** "YYYY-MM-DD" (input type=date) ↔ "YYYYMMDD". */
export function toInputDate(da: string): string {
  return da.length === 8 ? formatDate(da) : '';
}
export function fromInputDate(v: string): string {
  return v.replace(/-/g, '');
}

export function formatSex(sex: string, locale: Locale): string {
  const s = sex.toUpperCase();
  if (locale === 'zh-CN') return s === 'M' ? '男' : s === 'F' ? '女' : s === 'O' ? '其他' : '';
  return s === 'M' ? 'M' : s === 'F' ? 'F' : s === 'O' ? 'O' : '';
}

/** The patient's age at the study: (0010,1010) "045Y", else from the birth date. */
export function formatAge(age: string, birthDate: string, studyDate: string, locale: Locale): string {
  const m = /^(\d{1,3})([DWMY])$/i.exec(age.trim());
  const zh = locale === 'zh-CN';
  if (m) {
    const n = Number(m[1]);
    const unit = m[2].toUpperCase();
    if (zh) return `${n}${{ D: '天', W: '周', M: '个月', Y: '岁' }[unit]}`;
    return `${n}${{ D: 'd', W: 'w', M: 'mo', Y: 'y' }[unit]}`;
  }
  const b = birthDate.replace(/\D/g, '');
  const s = studyDate.replace(/\D/g, '');
  if (b.length !== 8 || s.length !== 8) return '';
  let years = Number(s.slice(0, 4)) - Number(b.slice(0, 4));
  if (s.slice(4) < b.slice(4)) years--;
  if (years < 0) return '';
  return zh ? `${years}岁` : `${years}y`;
}
