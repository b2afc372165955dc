// The DICOM tag browser: every attribute of the displayed image's instance
// (from the series metadata), filterable by tag, keyword or value.
import { useMemo, useState } from 'react';
import { useT } from '../../i18n';
import { viewerMessages } from '../messages';
import { displayValue, T, type DicomJson } from '../data/dicomJson';

const KEYWORDS: Record<string, string> = Object.fromEntries(Object.entries(T).map(([k, v]) => [v, k]));

export function TagBrowser({ instance }: { instance?: DicomJson }) {
  const t = useT(viewerMessages);
  const [filter, setFilter] = useState('');
  const rows = useMemo(() => {
    if (!instance) return [];
    const q = filter.trim().toLowerCase();
    return Object.keys(instance)
      .sort()
      .map((tag) => ({ tag, kw: KEYWORDS[tag] ?? '', vr: instance[tag].vr, value: displayValue(instance[tag]) }))
      .filter((r) => !q || `${r.tag} ${r.kw} ${r.value}`.toLowerCase().includes(q));
  }, [instance, filter]);
  return (
    <section className="yy-panel" data-testid="tag-panel">
      <header>
        <h3>{t('tags')}</h3>
        <input data-testid="tag-filter" placeholder={t('filter')} value={filter} onChange={(e) => setFilter(e.target.value)} />
      </header>
      <table className="yy-tags">
        <tbody>
          {rows.map((r) => (
            <tr key={r.tag} data-testid={`tag-${r.tag}`}>
              <td className="yy-tag-id">({r.tag.slice(0, 4)},{r.tag.slice(4)})</td>
              <td>{r.kw}</td>
              <td>{r.vr}</td>
              <td className="yy-tag-value">{r.value}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
