// The DICOM viewer page (/viewer?StudyInstanceUIDs=UID[,UID][&SeriesInstanceUIDs=…]).
// A light shell: it starts the DICOMweb queries (series, study, the main
// series' metadata) at once, while the Cornerstone chunk (ViewerApp) loads.
import { lazy, Suspense, useEffect, useState } from 'react';
import { useT } from '../i18n';
import { viewerMessages } from './messages';
import { startStudyLoad } from './data/studyLoad';
import { markOnce } from './data/marks';
import './viewer.css';

// Fetched as soon as this small module runs, in parallel with the study queries.
const viewerAppChunk = import('./ViewerApp');
const ViewerApp = lazy(() => viewerAppChunk);

function readParams() {
  const q = new URLSearchParams(location.search);
  const list = (k: string) => (q.get(k) ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return { studyUIDs: list('StudyInstanceUIDs'), seriesUIDs: list('SeriesInstanceUIDs') };
}

/** The study's queries, started once per page address (a remount or a
 * second render reuses them: no duplicate searches in the audit trail);
 * failures are reported by ViewerApp. */
const started = new Map<string, ReturnType<typeof startStudyLoad>>();
function start(params: ReturnType<typeof readParams>) {
  if (!params.studyUIDs.length) return undefined;
  const key = `${params.studyUIDs.join(',')}|${params.seriesUIDs.join(',')}`;
  let p = started.get(key);
  if (!p) {
    p = startStudyLoad(params.studyUIDs, params.seriesUIDs);
    p.catch(() => started.delete(key));
    started.set(key, p);
  }
  return p;
}

// When the page is opened at /viewer this module is fetched at once (see
// router.tsx): the queries start here, before the session check has finished.
// Without a session they fail with 401 and the guard goes to sign-in anyway.
if (location.pathname === '/viewer') start(readParams());

export default function ViewerPage() {
  const t = useT(viewerMessages);
  const [params] = useState(readParams);
  const [load] = useState(() => start(params));
  // The server-rendered first image, on screen while the viewer's code loads (slow phone links).
  const [preview, setPreview] = useState<string>();
  useEffect(() => {
    let live = true;
    load?.then((l) => l.preview).then((url) => live && setPreview(url), () => {});
    return () => {
      live = false;
    };
  }, [load]);
  if (!load) return <div className="yy-viewer-msg" data-testid="viewer-error">{t('noStudy')}</div>;
  const fallback = (
    <div className="yy-viewer yy-preview-page" data-testid="viewer-loading">
      {preview ? <img className="yy-preview" src={preview} alt="" data-testid="viewer-preview" onLoad={() => markOnce('yunying:first-preview')} />
        : <span className="yy-viewer-msg">{t('loading')}</span>}
    </div>
  );
  return (
    <Suspense fallback={fallback}>
      <ViewerApp load={load} preview={preview} />
    </Suspense>
  );
}
