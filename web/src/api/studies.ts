// Study search for the study list: builds the QIDO-RS query (attribute
// matching plus the server's `orderby` / `institution` extensions, paging
// with limit+1 when no X-Total-Count comes back), parses DICOM JSON into
// plain study rows, and lists the member institutions.
import { ApiError, apiFetch, apiJson } from './client';

/** Keys the study list can sort by (the server's `orderby` values). */
export type SortKey = 'StudyDate' | 'PatientName' | 'PatientID' | 'AccessionNumber';
export interface Sort {
  key: SortKey;
  descending: boolean;
}

export interface StudyQuery {
  /** Patient name; `*` and `?` are wildcards, a plain value matches names starting with it. */
  patientName: string;
  patientId: string;
  accession: string;
  /** YYYYMMDD or empty. */
  dateFrom: string;
  dateTo: string;
  modalities: string[];
  institutions: string[];
  sort: Sort;
  /** 1-based. */
  page: number;
  pageSize: number;
}

/** A person name as DICOM JSON gives it (PS3.18 F.2.2). */
export interface PersonName {
  alphabetic: string;
  ideographic: string;
  phonetic: string;
}

export interface StudyRow {
  studyUid: string;
  patientName: PersonName;
  patientId: string;
  issuerOfPatientId: string;
  patientSex: string;
  patientBirthDate: string;
  patientAge: string;
  studyDate: string;
  studyTime: string;
  accession: string;
  description: string;
  modalities: string[];
  institutionName: string;
  referringPhysician: PersonName;
  numSeries: number | null;
  numInstances: number | null;
}

export interface StudyPage {
  studies: StudyRow[];
  /** X-Total-Count when the server sends it. */
  total: number | null;
  hasNext: boolean;
  /** The server sorted the results (it knows `orderby`); otherwise the page was sorted here. */
  sortedByServer: boolean;
}

export interface Institution {
  code: string;
  name_zh: string;
  name_en: string;
  regional?: boolean;
}

type DicomJson = Record<string, { vr: string; Value?: unknown[] } | undefined>;

const T = {
  StudyDate: '00080020',
  StudyTime: '00080030',
  AccessionNumber: '00080050',
  ModalitiesInStudy: '00080061',
  InstitutionName: '00080080',
  ReferringPhysicianName: '00080090',
  StudyDescription: '00081030',
  PatientName: '00100010',
  PatientID: '00100020',
  IssuerOfPatientID: '00100021',
  PatientBirthDate: '00100030',
  PatientSex: '00100040',
  PatientAge: '00101010',
  StudyInstanceUID: '0020000D',
  NumberOfStudyRelatedSeries: '00201206',
  NumberOfStudyRelatedInstances: '00201208',
} as const;

/** What this server understands of the QIDO extensions, learnt from its answers. */
const support = { orderby: true, institution: true };

function firstValue(obj: DicomJson, tag: string): unknown {
  return obj[tag]?.Value?.[0];
}

function str(obj: DicomJson, tag: string): string {
  const v = firstValue(obj, tag);
  return v === undefined || v === null ? '' : String(v).trim();
}

function num(obj: DicomJson, tag: string): number | null {
  const v = firstValue(obj, tag);
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
}

function personName(obj: DicomJson, tag: string): PersonName {
  const v = firstValue(obj, tag) as { Alphabetic?: string; Ideographic?: string; Phonetic?: string } | string | undefined;
  if (typeof v === 'string') return { alphabetic: v, ideographic: '', phonetic: '' };
  return { alphabetic: v?.Alphabetic ?? '', ideographic: v?.Ideographic ?? '', phonetic: v?.Phonetic ?? '' };
}

/** One QIDO-RS study result as a row. */
export function parseStudy(obj: DicomJson): StudyRow {
  return {
    studyUid: str(obj, T.StudyInstanceUID),
    patientName: personName(obj, T.PatientName),
    patientId: str(obj, T.PatientID),
    issuerOfPatientId: str(obj, T.IssuerOfPatientID),
    patientSex: str(obj, T.PatientSex),
    patientBirthDate: str(obj, T.PatientBirthDate),
    patientAge: str(obj, T.PatientAge),
    studyDate: str(obj, T.StudyDate),
    studyTime: str(obj, T.StudyTime),
    accession: str(obj, T.AccessionNumber),
    description: str(obj, T.StudyDescription),
    modalities: (obj[T.ModalitiesInStudy]?.Value ?? []).map(String),
    institutionName: str(obj, T.InstitutionName),
    referringPhysician: personName(obj, T.ReferringPhysicianName),
    numSeries: num(obj, T.NumberOfStudyRelatedSeries),
    numInstances: num(obj, T.NumberOfStudyRelatedInstances),
  };
}

/** A patient-name search value: a plain value matches names that start with it. */
export function nameMatcher(input: string): string {
  const v = input.trim();
  if (!v) return '';
  return /[*?]/.test(v) ? v : `${v}*`;
}

/** The QIDO-RS query string of a search (without the leading `?`). */
export function studyQueryString(
  q: StudyQuery,
  opts: { withOrderBy: boolean; withInstitution: boolean; limit: number; institutionNames?: string[] },
): string {
  const p = new URLSearchParams();
  const name = nameMatcher(q.patientName);
  if (name) p.set('PatientName', name);
  if (q.patientId.trim()) p.set('PatientID', q.patientId.trim());
  if (q.accession.trim()) p.set('AccessionNumber', q.accession.trim());
  if (q.dateFrom || q.dateTo) p.set('StudyDate', `${q.dateFrom}-${q.dateTo}`);
  if (q.modalities.length) p.set('ModalitiesInStudy', q.modalities.join('\\'));
  if (opts.withInstitution) for (const c of q.institutions) p.append('institution', c);
  else if (q.institutions.length && opts.institutionNames?.length) {
    // A server without the `institution` key still matches the stored name.
    p.set('InstitutionName', opts.institutionNames.join('\\'));
  }
  if (opts.withOrderBy) p.set('orderby', `${q.sort.descending ? '-' : ''}${q.sort.key}`);
  p.set('includefield', 'InstitutionName,PatientAge');
  p.set('limit', String(opts.limit));
  p.set('offset', String(Math.max(0, (q.page - 1) * q.pageSize)));
  return p.toString();
}

/** Whether a 400 from the server refuses one of the extension keys. */
function refusesKey(e: unknown, key: string): boolean {
  return e instanceof ApiError && e.status === 400 && e.message.includes(`"${key}"`);
}

/**
 * Runs a study search (one page). `institutionNames` are the stored names of
 * the selected institutions, matched when the server lacks `institution`.
 */
export async function searchStudies(
  q: StudyQuery,
  { signal, institutionNames }: { signal?: AbortSignal; institutionNames?: string[] } = {},
): Promise<StudyPage> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const withOrderBy = support.orderby;
    const withInstitution = support.institution;
    const qs = studyQueryString(q, { withOrderBy, withInstitution, limit: q.pageSize + 1, institutionNames });
    let r: Response;
    try {
      r = await apiFetch(`/dicom-web/studies?${qs}`, { headers: { Accept: 'application/dicom+json' }, signal });
    } catch (e) {
      // An older server refuses keys it does not know: learn and ask again.
      if (withOrderBy && refusesKey(e, 'orderby')) {
        support.orderby = false;
        continue;
      }
      if (withInstitution && refusesKey(e, 'institution')) {
        support.institution = false;
        continue;
      }
      throw e;
    }
    const warnings = r.headers.get('Warning') ?? '';
    if (withOrderBy && /orderby/i.test(warnings)) support.orderby = false;
    if (withInstitution && /\binstitution\b/i.test(warnings)) {
      support.institution = false;
      // The filter was ignored: ask again matching the names.
      if (q.institutions.length) continue;
    }
    const body = r.status === 204 ? [] : ((await r.json()) as DicomJson[]);
    let studies = body.map(parseStudy);
    const totalHeader = r.headers.get('X-Total-Count');
    const total = totalHeader !== null && /^\d+$/.test(totalHeader.trim()) ? Number(totalHeader) : null;
    const hasNext = total !== null ? q.page * q.pageSize < total : studies.length > q.pageSize;
    studies = studies.slice(0, q.pageSize);
    const sortedByServer = support.orderby;
    if (!sortedByServer) studies = sortRows(studies, q.sort);
    return { studies, total, hasNext, sortedByServer };
  }
  throw new Error('the server refused the study search');
}

/** Sorts rows as the server's `orderby` would (used when the server cannot). */
export function sortRows(rows: StudyRow[], sort: Sort): StudyRow[] {
  const keyOf = (s: StudyRow): string => {
    switch (sort.key) {
      case 'StudyDate':
        return `${s.studyDate}${s.studyTime}`;
      case 'PatientName':
        return s.patientName.alphabetic || s.patientName.ideographic;
      case 'PatientID':
        return s.patientId;
      case 'AccessionNumber':
        return s.accession;
    }
  };
  const sorted = [...rows].sort((a, b) => keyOf(a).localeCompare(keyOf(b), 'zh-CN'));
  return sort.descending ? sorted.reverse() : sorted;
}

/** The member institutions (`GET /api/institutions`). */
export async function listInstitutions(): Promise<Institution[]> {
  const r = await apiJson<{ institutions: Institution[] }>('/api/institutions');
  return r.institutions ?? [];
}

/** URL of a study's thumbnail. */
export function studyThumbnailUrl(studyUid: string, size = 96): string {
  return `/dicom-web/studies/${encodeURIComponent(studyUid)}/thumbnail?viewport=${size},${size}`;
}
