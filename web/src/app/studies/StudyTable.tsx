// The study results: a table with sortable column headers on desktop, the
// same rows laid out as cards on phones (app.css). A row opens the study in
// the viewer on click or Enter; the patient name is also a real link.
import type { KeyboardEvent, MouseEvent } from 'react';
import type { Institution, Sort, SortKey, StudyRow } from '../../api/studies';
import { useLocale, useT } from '../../i18n';
import { navigate } from '../../router';
import { institutionName } from '../session';
import { displayName, formatAge, formatDate, formatSex, formatTime } from './format';
import { studyListMessages } from './messages';
import { Thumbnail } from './Thumbnail';

export function viewerUrl(studyUid: string): string {
  return `/viewer?StudyInstanceUIDs=${encodeURIComponent(studyUid)}`;
}

interface Props {
  studies: StudyRow[];
  sort: Sort;
  onSort: (s: Sort) => void;
  institutions: Institution[];
  busy: boolean;
}

/** Finds the member institution a stored InstitutionName refers to. */
function institutionOf(name: string, institutions: Institution[]): Institution | undefined {
  const n = name.trim().toLowerCase();
  if (!n) return undefined;
  return institutions.find((i) => [i.name_zh, i.name_en, i.code].some((x) => x && x.toLowerCase() === n));
}

export function StudyTable({ studies, sort, onSort, institutions, busy }: Props) {
  const t = useT(studyListMessages);
  const { locale } = useLocale();

  const open = (uid: string) => navigate(viewerUrl(uid));
  const onRowKey = (ev: KeyboardEvent, uid: string) => {
    if (ev.key === 'Enter' && ev.target === ev.currentTarget) {
      ev.preventDefault();
      open(uid);
    }
  };
  const onRowClick = (ev: MouseEvent, uid: string) => {
    if ((ev.target as HTMLElement).closest('a, button')) return;
    open(uid);
  };
  const onLinkClick = (ev: MouseEvent, uid: string) => {
    // New tab / window keeps the browser's behaviour.
    if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    open(uid);
  };

  const header = (key: SortKey | null, label: string, className?: string) => {
    if (!key) return <th scope="col" className={className}>{label}</th>;
    const active = sort.key === key;
    const ariaSort = active ? (sort.descending ? 'descending' : 'ascending') : 'none';
    const next: Sort = active ? { key, descending: !sort.descending } : { key, descending: key === 'StudyDate' };
    return (
      <th scope="col" className={className} aria-sort={ariaSort}>
        <button
          type="button"
          className={`sort-button${active ? ' is-active' : ''}`}
          data-testid={`sort-${key}`}
          data-sort={ariaSort}
          onClick={() => onSort(next)}
        >
          {label}
          <span className="sort-button__arrow" aria-hidden="true">
            {active ? (sort.descending ? '▼' : '▲') : '↕'}
          </span>
        </button>
      </th>
    );
  };

  return (
    <table className="study-table" data-testid="study-table" aria-busy={busy} aria-label={t('results')}>
      <thead>
        <tr>
          <th scope="col" className="col-thumb">
            <span className="visually-hidden">{t('colModality')}</span>
          </th>
          {header('PatientName', t('colPatient'), 'col-patient')}
          {header('PatientID', t('colPatientId'))}
          {header(null, t('colSexAge'))}
          {header('StudyDate', t('colDate'))}
          {header(null, t('colModality'))}
          {header(null, t('colDescription'), 'col-description')}
          {header('AccessionNumber', t('colAccession'))}
          {header(null, t('colInstitution'), 'col-institution')}
          {header(null, t('colImages'), 'col-num')}
        </tr>
      </thead>
      <tbody>
        {studies.map((s) => {
          const name = displayName(s.patientName, locale);
          const sex = formatSex(s.patientSex, locale);
          const age = formatAge(s.patientAge, s.patientBirthDate, s.studyDate, locale);
          const inst = institutionOf(s.institutionName, institutions);
          const instName = inst ? institutionName(inst, locale) : s.institutionName;
          const label = name.primary || s.patientId || s.studyUid;
          return (
            <tr
              key={s.studyUid}
              tabIndex={0}
              className="study-row"
              data-testid="study-row"
              data-study-uid={s.studyUid}
              data-patient-id={s.patientId}
              onClick={(e) => onRowClick(e, s.studyUid)}
              onKeyDown={(e) => onRowKey(e, s.studyUid)}
            >
              <td className="col-thumb">
                <Thumbnail studyUid={s.studyUid} modality={s.modalities[0] ?? ''} />
              </td>
              <td className="col-patient" data-label={t('colPatient')}>
                <a
                  href={viewerUrl(s.studyUid)}
                  title={t('openStudy', { name: label })}
                  className="patient-link"
                  data-testid="study-open"
                  onClick={(e) => onLinkClick(e, s.studyUid)}
                >
                  <span className="patient-name" data-testid="study-patient-name">
                    {name.primary || '—'}
                  </span>
                  {name.secondary && <span className="patient-name__alt">{name.secondary}</span>}
                </a>
              </td>
              <td
                className="col-id mono"
                data-label={t('colPatientId')}
                data-testid="study-patient-id"
                title={s.issuerOfPatientId ? t('issuer', { issuer: s.issuerOfPatientId }) : undefined}
              >
                {s.patientId}
              </td>
              <td className="col-sexage" data-label={t('colSexAge')}>
                {[sex, age].filter(Boolean).join(' · ') || '—'}
              </td>
              <td className="col-date" data-label={t('colDate')} data-testid="study-date">
                <span className="mono">{formatDate(s.studyDate)}</span>{' '}
                <span className="muted mono">{formatTime(s.studyTime)}</span>
              </td>
              <td className="col-modality" data-label={t('colModality')} data-testid="study-modalities">
                {s.modalities.map((m) => (
                  <span key={m} className="badge">
                    {m}
                  </span>
                ))}
              </td>
              <td className="col-description" data-label={t('colDescription')}>
                {s.description || '—'}
              </td>
              <td className="col-accession mono" data-label={t('colAccession')} data-testid="study-accession">
                {s.accession || '—'}
              </td>
              <td className="col-institution" data-label={t('colInstitution')} data-testid="study-institution">
                {instName || '—'}
              </td>
              <td className="col-num" data-label={t('colImages')}>
                {s.numSeries ?? '—'} / {s.numInstances ?? '—'}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
