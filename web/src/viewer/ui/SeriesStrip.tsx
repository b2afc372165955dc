// The series thumbnails (server-rendered /series/{se}/thumbnail): click one to
// show it in the active viewport. Shows each series' load progress.
import { useT } from '../../i18n';
import { viewerMessages } from '../messages';
import { thumbnailUrl, type SeriesSummary } from '../data/queries';

type Props = {
  series: SeriesSummary[];
  shown: Set<string>;
  progress: Record<string, { loaded: number; total: number }>;
  onPick: (s: SeriesSummary) => void;
};

export function SeriesStrip({ series, shown, progress, onPick }: Props) {
  const t = useT(viewerMessages);
  return (
    <nav className="yy-strip" data-testid="series-strip">
      {series.map((s) => {
        const p = progress[s.seriesUID];
        return (
          <button
            key={s.seriesUID}
            type="button"
            className={`yy-thumb${shown.has(s.seriesUID) ? ' yy-thumb-shown' : ''}`}
            data-testid={`series-thumb-${s.seriesUID}`}
            data-series-number={s.number}
            onClick={() => onPick(s)}
            title={s.description}
          >
            <img src={thumbnailUrl(s.studyUID, s.seriesUID)} alt="" loading="lazy" />
            <span className="yy-thumb-label">
              {s.modality} #{Number.isFinite(s.number) ? s.number : ''} · {s.count}{t('images')}
            </span>
            <span className="yy-thumb-desc">{s.description}</span>
            {p && p.loaded < p.total && (
              <span className="yy-thumb-progress" style={{ width: `${(100 * p.loaded) / p.total}%` }} />
            )}
          </button>
        );
      })}
    </nav>
  );
}
