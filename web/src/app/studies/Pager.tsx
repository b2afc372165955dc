// Paging of the study list: page size, previous / next, "page N of M" when
// the server tells the total.
import { useT } from '../../i18n';
import { studyListMessages } from './messages';
import { PAGE_SIZES } from './searchParams';

interface Props {
  page: number;
  pageSize: number;
  total: number | null;
  shown: number;
  hasNext: boolean;
  busy: boolean;
  onPage: (page: number) => void;
  onPageSize: (size: number) => void;
}

export function Pager({ page, pageSize, total, shown, hasNext, busy, onPage, onPageSize }: Props) {
  const t = useT(studyListMessages);
  const pages = total !== null ? Math.max(1, Math.ceil(total / pageSize)) : null;
  return (
    <nav className="pager" aria-label={t('results')} data-testid="pager">
      <span className="pager__summary" data-testid="pager-summary">
        {total !== null ? t('total', { total }) : t('shown', { n: shown })}
      </span>
      <label className="pager__size">
        <span>{t('pageSize')}</span>
        <select className="input input--small" value={pageSize} data-testid="page-size" onChange={(e) => onPageSize(Number(e.target.value))}>
          {(PAGE_SIZES.includes(pageSize as (typeof PAGE_SIZES)[number]) ? [...PAGE_SIZES] : [pageSize, ...PAGE_SIZES]).map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </label>
      <div className="pager__nav">
        <button type="button" className="btn btn--small" disabled={busy || page <= 1} data-testid="page-prev" onClick={() => onPage(page - 1)}>
          ‹ {t('prev')}
        </button>
        <span className="pager__page" data-testid="page-label" aria-live="polite">
          {pages !== null ? t('pageOf', { page, pages }) : t('pageN', { page })}
        </span>
        <button type="button" className="btn btn--small" disabled={busy || !hasNext} data-testid="page-next" onClick={() => onPage(page + 1)}>
          {t('next')} ›
        </button>
      </div>
    </nav>
  );
}
