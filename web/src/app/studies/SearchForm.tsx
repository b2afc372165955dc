// The study search form: patient name (wildcards), patient ID, accession
// number, study date range with quick picks, modalities, institution, and
// (on phones, where there are no column headers) the sort order. Text fields
// apply on Enter / 查询; chips, quick picks and selects apply at once.
// Collapsible on phones.
import { useEffect, useState, type FormEvent } from 'react';
import type { Institution, SortKey, StudyQuery } from '../../api/studies';
import { useLocale, useT } from '../../i18n';
import { institutionName } from '../session';
import { fromInputDate, toInputDate } from './format';
import { studyListMessages, type StudyListKey } from './messages';
import { activeFilterCount, EMPTY_QUERY, lastDays, ymd } from './searchParams';

export const MODALITIES = ['CT', 'MR', 'DX', 'CR', 'US', 'MG', 'XA', 'RF', 'NM', 'PT'] as const;

const SORT_OPTIONS: { value: string; key: SortKey; descending: boolean }[] = [
  { value: '-StudyDate', key: 'StudyDate', descending: true },
  { value: 'StudyDate', key: 'StudyDate', descending: false },
  { value: 'PatientName', key: 'PatientName', descending: false },
  { value: '-PatientName', key: 'PatientName', descending: true },
  { value: 'PatientID', key: 'PatientID', descending: false },
  { value: 'AccessionNumber', key: 'AccessionNumber', descending: false },
];

interface Props {
  query: StudyQuery;
  institutions: Institution[];
  showInstitution: boolean;
  onApply: (q: StudyQuery) => void;
}

export function SearchForm({ query, institutions, showInstitution, onApply }: Props) {
  const t = useT(studyListMessages);
  const { locale } = useLocale();
  const [draft, setDraft] = useState<StudyQuery>(query);
  const [open, setOpen] = useState(false);

  // The URL changed (back/forward, a column sort): show what is applied.
  useEffect(() => setDraft(query), [query]);

  const apply = (changes: Partial<StudyQuery> = {}) => {
    const q = { ...draft, ...changes, page: 1 };
    setDraft(q);
    onApply(q);
  };
  const submit = (ev: FormEvent) => {
    ev.preventDefault();
    apply();
    setOpen(false);
  };
  const set = (changes: Partial<StudyQuery>) => setDraft((d) => ({ ...d, ...changes }));

  const today = ymd(new Date());
  const picks = [
    { id: 'today', label: t('today'), range: { dateFrom: today, dateTo: today } },
    { id: '7d', label: t('last7'), range: lastDays(7) },
    { id: '30d', label: t('last30'), range: lastDays(30) },
    { id: 'any', label: t('anyDate'), range: { dateFrom: '', dateTo: '' } },
  ];
  const sortValue = `${draft.sort.descending ? '-' : ''}${draft.sort.key}`;
  const active = activeFilterCount(query);

  return (
    <form className="search-panel" role="search" onSubmit={submit} data-testid="study-search" data-open={open}>
      <div className="search-panel__bar">
        <button
          type="button"
          className="btn search-panel__toggle"
          aria-expanded={open}
          aria-controls="search-fields"
          data-testid="search-toggle"
          onClick={() => setOpen((o) => !o)}
        >
          <svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">
            <path d="M3 5h18l-7 8v6l-4-2v-4z" fill="none" stroke="currentColor" strokeWidth="2" strokeLinejoin="round" />
          </svg>
          {active ? t('filtersActive', { n: active }) : t('filters')}
        </button>
        <label className="search-panel__quick">
          <span className="visually-hidden">{t('patientName')}</span>
          <input
            className="input"
            type="search"
            placeholder={t('patientName')}
            value={draft.patientName}
            data-testid="search-quick-name"
            onChange={(e) => set({ patientName: e.target.value })}
          />
        </label>
      </div>
      <div className="search-fields" id="search-fields">
        <label className="field field--name">
          <span className="field-label">{t('patientName')}</span>
          <input
            className="input"
            type="search"
            value={draft.patientName}
            placeholder={t('patientNameHint')}
            data-testid="search-patient-name"
            onChange={(e) => set({ patientName: e.target.value })}
          />
        </label>
        <label className="field">
          <span className="field-label">{t('patientId')}</span>
          <input
            className="input"
            type="search"
            value={draft.patientId}
            autoCapitalize="characters"
            spellCheck={false}
            data-testid="search-patient-id"
            onChange={(e) => set({ patientId: e.target.value })}
          />
        </label>
        <label className="field">
          <span className="field-label">{t('accession')}</span>
          <input
            className="input"
            type="search"
            value={draft.accession}
            spellCheck={false}
            data-testid="search-accession"
            onChange={(e) => set({ accession: e.target.value })}
          />
        </label>
        <fieldset className="field field--dates">
          <legend className="field-label">{t('studyDate')}</legend>
          <div className="date-range">
            <input
              className="input"
              type="date"
              aria-label={t('dateFrom')}
              value={toInputDate(draft.dateFrom)}
              max={toInputDate(draft.dateTo) || undefined}
              data-testid="search-date-from"
              onChange={(e) => set({ dateFrom: fromInputDate(e.target.value) })}
            />
            <span aria-hidden="true">–</span>
            <input
              className="input"
              type="date"
              aria-label={t('dateTo')}
              value={toInputDate(draft.dateTo)}
              min={toInputDate(draft.dateFrom) || undefined}
              data-testid="search-date-to"
              onChange={(e) => set({ dateTo: fromInputDate(e.target.value) })}
            />
          </div>
          <div className="chips" role="group" aria-label={t('studyDate')}>
            {picks.map((p) => {
              const on = draft.dateFrom === p.range.dateFrom && draft.dateTo === p.range.dateTo;
              return (
                <button
                  key={p.id}
                  type="button"
                  className="chip"
                  aria-pressed={on}
                  data-testid={`date-pick-${p.id}`}
                  onClick={() => apply(p.range)}
                >
                  {p.label}
                </button>
              );
            })}
          </div>
        </fieldset>
        <fieldset className="field field--modalities">
          <legend className="field-label">{t('modality')}</legend>
          <div className="chips" role="group" aria-label={t('modality')}>
            {MODALITIES.map((m) => {
              const on = draft.modalities.includes(m);
              return (
                <button
                  key={m}
                  type="button"
                  className="chip chip--mono"
                  aria-pressed={on}
                  data-testid={`modality-${m}`}
                  onClick={() =>
                    apply({ modalities: on ? draft.modalities.filter((x) => x !== m) : [...draft.modalities, m] })
                  }
                >
                  {m}
                </button>
              );
            })}
          </div>
        </fieldset>
        {showInstitution && (
          <label className="field field--institution">
            <span className="field-label">{t('institution')}</span>
            <select
              className="input"
              value={draft.institutions[0] ?? ''}
              data-testid="search-institution"
              onChange={(e) => apply({ institutions: e.target.value ? [e.target.value] : [] })}
            >
              <option value="">{t('allInstitutions')}</option>
              {institutions.map((i) => (
                <option key={i.code} value={i.code}>
                  {institutionName(i, locale)}
                </option>
              ))}
            </select>
          </label>
        )}
        <label className="field field--sort">
          <span className="field-label">{t('sortBy')}</span>
          <select
            className="input"
            value={sortValue}
            data-testid="search-sort"
            onChange={(e) => {
              const o = SORT_OPTIONS.find((x) => x.value === e.target.value) ?? SORT_OPTIONS[0];
              apply({ sort: { key: o.key, descending: o.descending } });
            }}
          >
            {SORT_OPTIONS.map((o) => (
              <option key={o.value} value={o.value}>
                {sortLabel(o.key, t)} {o.descending ? '↓' : '↑'}
              </option>
            ))}
          </select>
        </label>
        <div className="search-actions">
          <button type="submit" className="btn btn--primary" data-testid="search-submit">
            {t('search')}
          </button>
          <button
            type="button"
            className="btn"
            data-testid="search-reset"
            onClick={() => apply({ ...EMPTY_QUERY, pageSize: draft.pageSize })}
          >
            {t('reset')}
          </button>
        </div>
      </div>
    </form>
  );
}

export function sortLabel(key: SortKey, t: ReturnType<typeof useT<StudyListKey>>): string {
  switch (key) {
    case 'StudyDate':
      return t('colDate');
    case 'PatientName':
      return t('colPatient');
    case 'PatientID':
      return t('colPatientId');
    case 'AccessionNumber':
      return t('colAccession');
  }
}
