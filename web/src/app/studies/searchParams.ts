// The study search kept in the page URL (so back/forward, reload and a
// shared link give the same list): ?name=&pid=&acc=&from=&to=&mod=CT,MR
// &inst=CODE&sort=-StudyDate&page=2&size=50.
import type { SortKey, StudyQuery } from '../../api/studies';

export const PAGE_SIZES = [25, 50, 100] as const;
export const DEFAULT_PAGE_SIZE = 25;
export const MAX_PAGE_SIZE = 200;
const SORT_KEYS: SortKey[] = ['StudyDate', 'PatientName', 'PatientID', 'AccessionNumber'];

export const EMPTY_QUERY: StudyQuery = {
  patientName: '',
  patientId: '',
  accession: '',
  dateFrom: '',
  dateTo: '',
  modalities: [],
  institutions: [],
  sort: { key: 'StudyDate', descending: true },
  page: 1,
  pageSize: DEFAULT_PAGE_SIZE,
};

function date(v: string | null): string {
  const d = (v ?? '').replace(/-/g, '');
  return /^\d{8}$/.test(d) ? d : '';
}

export function queryFromSearch(search: string): StudyQuery {
  const p = new URLSearchParams(search);
  const sortRaw = p.get('sort') ?? '';
  const descending = sortRaw.startsWith('-');
  const key = sortRaw.replace(/^-/, '') as SortKey;
  const size = Number(p.get('size'));
  const page = Number(p.get('page'));
  return {
    patientName: p.get('name') ?? '',
    patientId: p.get('pid') ?? '',
    accession: p.get('acc') ?? '',
    dateFrom: date(p.get('from')),
    dateTo: date(p.get('to')),
    modalities: (p.get('mod') ?? '')
      .split(',')
      .map((m) => m.trim().toUpperCase())
      .filter((m) => /^[A-Z0-9]{1,16}$/.test(m)),
    institutions: p.getAll('inst').filter(Boolean),
    sort: SORT_KEYS.includes(key) ? { key, descending } : EMPTY_QUERY.sort,
    page: Number.isInteger(page) && page > 0 ? page : 1,
    // Any size a link asks for (1–200); the form offers 25, 50 and 100.
    pageSize: Number.isInteger(size) && size >= 1 && size <= MAX_PAGE_SIZE ? size : DEFAULT_PAGE_SIZE,
  };
}

export function searchFromQuery(q: StudyQuery): string {
  const p = new URLSearchParams();
  if (q.patientName.trim()) p.set('name', q.patientName.trim());
  if (q.patientId.trim()) p.set('pid', q.patientId.trim());
  if (q.accession.trim()) p.set('acc', q.accession.trim());
  if (q.dateFrom) p.set('from', q.dateFrom);
  if (q.dateTo) p.set('to', q.dateTo);
  if (q.modalities.length) p.set('mod', q.modalities.join(','));
  for (const i of q.institutions) p.append('inst', i);
  const sort = `${q.sort.descending ? '-' : ''}${q.sort.key}`;
  if (sort !== '-StudyDate') p.set('sort', sort);
  if (q.page > 1) p.set('page', String(q.page));
  if (q.pageSize !== DEFAULT_PAGE_SIZE) p.set('size', String(q.pageSize));
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** Filters in use (for the collapsed form on phones). */
export function activeFilterCount(q: StudyQuery): number {
  return [q.patientName.trim(), q.patientId.trim(), q.accession.trim(), q.dateFrom || q.dateTo, q.modalities.length, q.institutions.length].filter(
    Boolean,
  ).length;
}

/** YYYYMMDD of a local date. */
export function ymd(d: Date): string {
  return `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, '0')}${String(d.getDate()).padStart(2, '0')}`;
}

/** The date range of a quick pick: today, or the last N days including today. */
export function lastDays(days: number, today = new Date()): { dateFrom: string; dateTo: string } {
  const from = new Date(today.getFullYear(), today.getMonth(), today.getDate() - (days - 1));
  return { dateFrom: ymd(from), dateTo: ymd(today) };
}
