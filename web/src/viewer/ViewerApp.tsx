// The viewer itself (Cornerstone chunk): shows the main series in a stack
// viewport grid (first image first, then the rest prefetched), and hosts the
// toolbar, series strip and side panels. MPR/3D live in a lazily loaded chunk.
import { lazy, Suspense, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { ToolGroupManager, ReferenceLinesTool } from '@cornerstonejs/tools';
import { useT } from '../i18n';
import { navigate } from '../router';
import { viewerMessages } from './messages';
import { initCornerstone } from './cs/init';
import { isPhone, volumeSupport } from './cs/device';
import type { SeriesStack } from './data/seriesStack';
import type { SeriesSummary } from './data/queries';
import type { StudyLoad } from './data/studyLoad';
import type { DicomJson } from './data/dicomJson';
import { prefetchSeries } from './data/prefetch';
import { bulkLoadSeries } from './data/seriesBulk';
import { RETRIEVING_EVENT } from './data/retrieving';
import { frameSyntax } from './data/transferSyntax';
import { singleFrameImageIds } from './data/seriesStack';
import { markOnce } from './data/marks';
import { getEngine, stackViewport } from './stack/engine';
import { StackCell } from './stack/StackCell';
import { createStackToolGroup, setPrimaryTool, STACK_TOOL_GROUP, type PrimaryToolId } from './tools/stackTools';
import { destroySync, setSyncEnabled } from './tools/sync';
import { presetsFor, voiRange, type WindowPreset } from './tools/presets';
import { Toolbar, type PanelId, type ViewMode } from './ui/Toolbar';
import { SeriesStrip } from './ui/SeriesStrip';
import { MeasurementPanel } from './ui/MeasurementPanel';
import { TagBrowser } from './ui/TagBrowser';
import { ReportPanel } from './ui/ReportPanel';
import { CinePanel } from './ui/CinePanel';
import { cellArea, DESKTOP_LAYOUTS, LAYOUTS, PHONE_LAYOUTS, type LayoutId } from './ui/layouts';

markOnce('yunying:app-loaded');
// Cornerstone starts as soon as this chunk runs, before the first React render.
const cornerstoneReady = initCornerstone().then(() => markOnce('yunying:cs-ready'));

const VolumeWorkspace = lazy(() => import('./volume/VolumeWorkspace'));

const CELL_IDS = ['stack-0', 'stack-1', 'stack-2', 'stack-3'];

/** Fills cells: keep what is shown, add unseen series (same study and larger first), then repeat the first. */
function fillCells(current: (SeriesSummary | undefined)[], n: number, all: SeriesSummary[]): (SeriesSummary | undefined)[] {
  const out = current.slice(0, n);
  const shown = new Set(out.filter(Boolean).map((s) => s!.seriesUID));
  // Same study first, larger series first (a localizer comes after the axial series).
  const studyOf = out.find(Boolean)?.studyUID ?? all[0]?.studyUID;
  const candidates = [...all].sort((a, b) => Number(b.studyUID === studyOf) - Number(a.studyUID === studyOf) || b.count - a.count);
  for (let i = 0; i < n; i++) {
    if (out[i]) continue;
    const pick = candidates.find((s) => !shown.has(s.seriesUID));
    out[i] = pick ?? all[0];
    if (pick) shown.add(pick.seriesUID);
  }
  return out;
}

export default function ViewerApp({ load, preview }: { load: Promise<StudyLoad>; preview?: string }) {
  const t = useT(viewerMessages);
  const phone = useMemo(() => isPhone(), []);
  const [ready, setReady] = useState(false);
  const [error, setError] = useState<string>();
  const [study, setStudy] = useState<DicomJson>();
  const [series, setSeries] = useState<SeriesSummary[]>([]);
  const [layout, setLayout] = useState<LayoutId>('1x1');
  const [cells, setCells] = useState<(SeriesSummary | undefined)[]>([]);
  const [activeCell, setActiveCell] = useState(0);
  const [enlarged, setEnlarged] = useState<number | null>(null);
  const [tool, setTool] = useState<PrimaryToolId>('wl');
  const [touchMode, setTouchMode] = useState<'wl' | 'scroll'>('scroll');
  const [sync, setSync] = useState(true);
  const [sharpenOn, setSharpenOn] = useState(false);
  const [sharpening, setSharpening] = useState(0.5);
  const [panel, setPanel] = useState<PanelId | null>(phone ? null : 'measurements');
  const [mode, setMode] = useState<ViewMode>('stack');
  const [notice, setNotice] = useState<string>();
  const [stacks, setStacks] = useState<Record<string, SeriesStack>>({});
  const [progress, setProgress] = useState<Record<string, { loaded: number; total: number }>>({});
  const [currentImage, setCurrentImage] = useState<{ imageId: string; index: number }>();
  const prefetchChain = useRef<Promise<void>>(Promise.resolve());
  const prefetched = useRef(new Set<string>());
  const gridRef = useRef<HTMLDivElement>(null);
  const mainSeriesUID = useRef<string>(undefined);

  // Cornerstone init joins the study/series queries the page started before this chunk loaded.
  useEffect(() => {
    let cancelled = false;
    (async () => {
      const [, loaded] = await Promise.all([cornerstoneReady, load]);
      markOnce('yunying:study-ready');
      if (cancelled) return;
      createStackToolGroup();
      setSeries(loaded.series);
      setStudy(loaded.study);
      setCells(loaded.main ? [loaded.main] : []);
      mainSeriesUID.current = loaded.main?.seriesUID;
      setReady(true);
    })().catch((e: unknown) => !cancelled && setError(e instanceof Error ? e.message : String(e)));
    return () => {
      cancelled = true;
    };
  }, [load]);

  // Images being restored from archive storage: say so (the loaders retry).
  useEffect(() => {
    const onRetrieving = (e: Event) => setNotice(t('retrieving', { seconds: (e as CustomEvent<number>).detail }));
    window.addEventListener(RETRIEVING_EVENT, onRetrieving);
    return () => window.removeEventListener(RETRIEVING_EVENT, onRetrieving);
  }, [t]);

  useEffect(() => () => {
    destroySync();
    ToolGroupManager.destroyToolGroup(STACK_TOOL_GROUP);
    getEngine().destroy();
  }, []);

  // Keep the canvases sized to their cells.
  useEffect(() => {
    const el = gridRef.current;
    if (!el || !ready) return;
    let raf = 0;
    const ro = new ResizeObserver(() => {
      cancelAnimationFrame(raf);
      raf = requestAnimationFrame(() => getEngine().resize(true, true));
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      cancelAnimationFrame(raf);
    };
  }, [ready, mode]);
  useEffect(() => {
    if (!ready) return;
    requestAnimationFrame(() => getEngine().resize(true, true));
  }, [layout, enlarged, panel, ready]);

  const n = LAYOUTS[layout].cells;
  useEffect(() => {
    if (!series.length) return;
    setCells((c) => (c.length >= n && c.slice(0, n).every(Boolean) ? c : fillCells(c, n, series)));
  }, [n, series]);

  // Tool bindings follow the toolbar.
  useEffect(() => {
    if (!ready) return;
    setPrimaryTool(createStackToolGroup(), tool, touchMode);
  }, [ready, tool, touchMode]);

  useEffect(() => setSyncEnabled(sync), [sync]);

  const activeViewportId = CELL_IDS[activeCell];
  const activeSeries = cells[activeCell];
  const activeStack = activeSeries ? stacks[activeSeries.seriesUID] : undefined;

  // Reference lines: the active viewport's plane drawn on the others (re-enabled once it has data).
  useEffect(() => {
    if (!ready || !activeStack) return;
    const g = createStackToolGroup();
    g.setToolConfiguration(ReferenceLinesTool.toolName, { sourceViewportId: activeViewportId });
    g.setToolDisabled(ReferenceLinesTool.toolName);
    if (n > 1) g.setToolEnabled(ReferenceLinesTool.toolName);
    getEngine().render();
  }, [ready, activeViewportId, activeStack, n]);

  // The tag browser follows the active viewport's image.
  useEffect(() => {
    const el = document.querySelector(`[data-testid="viewport-${activeViewportId}"]`);
    if (!el) return;
    const update = () => {
      const vp = stackViewport(activeViewportId);
      if (vp && vp.getImageIds().length) setCurrentImage({ imageId: vp.getCurrentImageId(), index: vp.getCurrentImageIdIndex() });
    };
    update();
    el.addEventListener('CORNERSTONE_STACK_NEW_IMAGE', update);
    return () => el.removeEventListener('CORNERSTONE_STACK_NEW_IMAGE', update);
  }, [activeViewportId, activeStack, mode]);

  // After the first image: the rest of each shown series, one series at a time —
  // one streaming series retrieve, else (refused, HTJ2K chosen) frame by frame.
  const queuePrefetch = useCallback((stack: SeriesStack, first: boolean) => {
    if (prefetched.current.has(stack.seriesUID)) return;
    prefetched.current.add(stack.seriesUID);
    const report = (loaded: number, total: number) => {
      setProgress((old) => ({ ...old, [stack.seriesUID]: { loaded, total } }));
      if (first && loaded >= total) markOnce('yunying:series-loaded');
    };
    prefetchChain.current = prefetchChain.current.then(async () => {
      if (!stack.imageIds.length) return;
      const bySop = singleFrameImageIds(stack);
      if (frameSyntax() === 'native' && bySop.size === stack.imageIds.length && stack.imageIds.length > 1) {
        if (await bulkLoadSeries(stack.studyUID, stack.seriesUID, bySop, report)) return;
      }
      await new Promise<void>((resolve) => {
        prefetchSeries(stack.seriesUID, stack.imageIds, 0, (p) => {
          report(p.loaded, p.total);
          if (p.loaded >= p.total) resolve();
        });
      });
    });
  }, []);

  const onStackReady = useCallback(
    (viewportId: string, stack: SeriesStack) => {
      setStacks((s) => ({ ...s, [stack.seriesUID]: stack }));
      queuePrefetch(stack, viewportId === CELL_IDS[0] && prefetched.current.size === 0);
    },
    [queuePrefetch],
  );

  const applyPreset = (p: WindowPreset | null) => {
    const vp = stackViewport(activeViewportId);
    if (!vp) return;
    if (p) vp.setProperties({ voiRange: voiRange(p.width, p.center) });
    else vp.resetProperties();
    if (sharpenOn) vp.setProperties({ sharpening } as never);
    vp.render();
  };

  const reset = () => {
    const vp = stackViewport(activeViewportId);
    if (!vp) return;
    vp.resetCamera();
    vp.resetProperties();
    if (sharpenOn) vp.setProperties({ sharpening } as never);
    vp.render();
  };

  const changeMode = (m: ViewMode) => {
    if (m !== 'stack') {
      const support = volumeSupport();
      if (!support.ok) {
        setNotice(t('noWebgl', { reason: support.reason }));
        setMode('stack');
        return;
      }
      if (!activeStack?.isReconstructable) {
        setNotice(t('notVolume'));
        return;
      }
    }
    setNotice(undefined);
    setEnlarged(null);
    setMode(m);
  };

  const pickSeries = (s: SeriesSummary) => {
    if (mode !== 'stack') setMode('stack');
    setCells((c) => {
      const next = [...c];
      next[activeCell] = s;
      return next;
    });
  };

  if (error) return <div className="yy-viewer-msg" data-testid="viewer-error">{t('loadFailed')}: {error}</div>;

  const lay = LAYOUTS[enlarged !== null ? '1x1' : layout];
  const shown = new Set(cells.slice(0, n).filter(Boolean).map((s) => s!.seriesUID));
  const sideOpen = panel !== null;

  return (
    <div className={`yy-viewer${phone ? ' yy-phone' : ''}${sideOpen ? ' yy-side-open' : ''}`} data-testid="viewer" data-mode={mode}>
      <header className="yy-topbar">
        <button type="button" className="yy-back" data-testid="viewer-back" onClick={() => navigate('/')}>‹ {t('back')}</button>
        <Toolbar
          phone={phone} mode={mode} tool={tool} onTool={setTool}
          presets={presetsFor(activeSeries?.modality ?? '')} onPreset={applyPreset}
          layouts={phone ? PHONE_LAYOUTS : DESKTOP_LAYOUTS} layout={layout} onLayout={(l) => { setEnlarged(null); setLayout(l); }}
          sync={sync} onSync={setSync}
          sharpening={sharpening} sharpenOn={sharpenOn} onSharpen={(on, k) => { setSharpenOn(on); setSharpening(k); }}
          onReset={reset} onMode={changeMode}
          panel={panel} onPanel={setPanel} touchMode={touchMode} onTouchMode={setTouchMode}
        />
      </header>
      {notice && <div className="yy-notice" data-testid="viewer-notice" role="status">{notice}<button type="button" onClick={() => setNotice(undefined)}>×</button></div>}
      <div className="yy-body">
        <SeriesStrip series={series} shown={shown} progress={progress} onPick={pickSeries} />
        <main className="yy-main">
          {!ready && <div className="yy-viewer-msg" data-testid="viewer-loading">{t('loading')}</div>}
          {ready && mode === 'stack' && (
            <div
              ref={gridRef}
              className="yy-grid"
              data-testid="viewport-grid"
              data-layout={layout}
              data-enlarged={enlarged ?? ''}
              style={{ gridTemplateColumns: lay.columns, gridTemplateRows: lay.rows, gridTemplateAreas: lay.areas }}
            >
              {CELL_IDS.slice(0, n).map((id, i) => (
                <div key={id} className="yy-cell-wrap" style={{ gridArea: enlarged === null ? cellArea(lay, i) : undefined, display: enlarged !== null && enlarged !== i ? 'none' : undefined }}>
                  <StackCell
                    viewportId={id}
                    series={cells[i]}
                    active={i === activeCell}
                    sharpening={sharpenOn ? sharpening : 0}
                    preview={i === 0 && cells[0]?.seriesUID === mainSeriesUID.current ? preview : undefined}
                    onActivate={() => setActiveCell(i)}
                    onToggleEnlarge={() => setEnlarged((e) => (e === null ? i : null))}
                    onStackReady={onStackReady}
                  />
                </div>
              ))}
            </div>
          )}
          {ready && mode !== 'stack' && activeStack && (
            <Suspense fallback={<div className="yy-viewer-msg">{t('loading')}</div>}>
              <VolumeWorkspace stack={activeStack} mode={mode} phone={phone} onFail={(reason) => { setNotice(t('noWebgl', { reason })); setMode('stack'); }} />
            </Suspense>
          )}
        </main>
        {sideOpen && (
          <aside className="yy-side" data-testid="side-panel">
            {phone && <button type="button" className="yy-side-close" data-testid="side-close" onClick={() => setPanel(null)}>{t('close')}</button>}
            {panel === 'measurements' && <MeasurementPanel />}
            {panel === 'tags' && <TagBrowser instance={currentImage && activeStack?.metaByImageId.get(currentImage.imageId)} />}
            {panel === 'report' && <ReportPanel study={study} />}
            {panel === 'cine' && activeStack && <CinePanel viewportId={activeViewportId} imageCount={activeStack.imageIds.length} />}
          </aside>
        )}
      </div>
    </div>
  );
}
