// One stack viewport of the grid: enables a Cornerstone StackViewport on its
// element, shows a series (first image first), keeps the four-corner DICOM
// overlay up to date, and reports double-click/double-tap (enlarge).
import { useEffect, useRef, useState } from 'react';
import { Enums, type StackViewport } from '@cornerstonejs/core';
import { forgetImage } from '../data/prefetch';
import { abandonHtj2k } from '../data/transferSyntax';
import { Enums as ToolEnums } from '@cornerstonejs/tools';
import { getEngine, stackViewport } from './engine';
import { createStackToolGroup } from '../tools/stackTools';
import { attachSync, detachSync } from '../tools/sync';
import { loadSeriesStack, type SeriesStack, type SeriesSummary } from '../data/seriesStack';
import { CornerOverlay, type OverlayState } from '../ui/CornerOverlay';
import { markOnce } from '../data/marks';

type Props = {
  viewportId: string;
  series?: SeriesSummary;
  active: boolean;
  sharpening: number;
  hidden?: boolean;
  /** A server-rendered image shown until the first Cornerstone render. */
  preview?: string;
  onActivate: () => void;
  onToggleEnlarge: () => void;
  onStackReady: (viewportId: string, stack: SeriesStack) => void;
};

export function StackCell({ viewportId, series, active, sharpening, hidden, preview, onActivate, onToggleEnlarge, onStackReady }: Props) {
  const elementRef = useRef<HTMLDivElement>(null);
  const [stack, setStack] = useState<SeriesStack>();
  const [overlay, setOverlay] = useState<OverlayState>();
  const [error, setError] = useState<string>();
  const [ready, setReady] = useState(false);
  const lastToggle = useRef<{ source: string; at: number }>({ source: '', at: 0 });
  const callbacks = useRef({ onToggleEnlarge, onStackReady });
  callbacks.current = { onToggleEnlarge, onStackReady };

  // Enable the viewport once per cell.
  useEffect(() => {
    const element = elementRef.current!;
    const engine = getEngine();
    engine.enableElement({ viewportId, type: Enums.ViewportType.STACK, element, defaultOptions: { background: [0, 0, 0] } });
    createStackToolGroup().addViewport(viewportId, engine.id);
    const refresh = () => {
      const vp = stackViewport(viewportId);
      if (!vp || !vp.getImageIds().length) return;
      const props = vp.getProperties();
      const voi = props.voiRange;
      setOverlay({
        imageIndex: vp.getCurrentImageIdIndex(),
        imageCount: vp.getImageIds().length,
        imageId: vp.getCurrentImageId(),
        windowWidth: voi ? voi.upper - voi.lower : NaN,
        windowCenter: voi ? (voi.upper + voi.lower) / 2 : NaN,
        zoom: vp.getZoom(),
      });
    };
    // A touch double-tap also synthesises a dblclick: one gesture, one toggle.
    const toggle = (source: 'tap' | 'dblclick') => {
      const now = Date.now();
      const last = lastToggle.current;
      if (last.source !== source && now - last.at < 600) return;
      lastToggle.current = { source, at: now };
      callbacks.current.onToggleEnlarge();
    };
    const onTap = (e: Event) => {
      if ((e as CustomEvent<{ taps: number }>).detail?.taps === 2) toggle('tap');
    };
    const onDblClick = () => toggle('dblclick');
    element.addEventListener(Enums.Events.STACK_NEW_IMAGE, refresh);
    element.addEventListener(Enums.Events.VOI_MODIFIED, refresh);
    element.addEventListener(Enums.Events.CAMERA_MODIFIED, refresh);
    element.addEventListener(ToolEnums.Events.TOUCH_TAP, onTap);
    element.addEventListener('dblclick', onDblClick);
    return () => {
      element.removeEventListener(Enums.Events.STACK_NEW_IMAGE, refresh);
      element.removeEventListener(Enums.Events.VOI_MODIFIED, refresh);
      element.removeEventListener(Enums.Events.CAMERA_MODIFIED, refresh);
      element.removeEventListener(ToolEnums.Events.TOUCH_TAP, onTap);
      element.removeEventListener('dblclick', onDblClick);
      detachSync(engine.id, viewportId);
      createStackToolGroup().removeViewports(engine.id, viewportId);
      engine.disableElement(viewportId);
    };
  }, [viewportId]);

  // Show the series: metadata in one request, then the first image.
  useEffect(() => {
    if (!series) return;
    let cancelled = false;
    setReady(false);
    setError(undefined);
    (async () => {
      const s = await loadSeriesStack(series);
      markOnce('yunying:metadata-ready');
      if (cancelled) return;
      const vp = stackViewport(viewportId) as StackViewport;
      const element = elementRef.current!;
      const rendered = new Promise<void>((resolve) => {
        element.addEventListener(Enums.Events.IMAGE_RENDERED, () => resolve(), { once: true });
      });
      await vp.setStack(s.imageIds, 0).catch(async () => {
        // The first frame failed (e.g. no HTJ2K copy yet): once more in the stored syntax.
        abandonHtj2k();
        forgetImage(s.imageIds[0]);
        return vp.setStack(s.imageIds, 0);
      });
      markOnce('yunying:stack-set');
      if (cancelled) return;
      vp.render();
      await rendered;
      if (cancelled) return;
      markOnce('yunying:first-image');
      setStack(s);
      setReady(true);
      attachSync(getEngine().id, viewportId, s.frameOfReferenceUID);
      callbacks.current.onStackReady(viewportId, s);
    })().catch((e: unknown) => {
      if (!cancelled) setError(e instanceof Error ? e.message : String(e));
    });
    return () => {
      cancelled = true;
    };
  }, [viewportId, series]);

  useEffect(() => {
    const vp = stackViewport(viewportId);
    if (!vp || !ready) return;
    vp.setProperties({ sharpening } as never);
    vp.render();
  }, [viewportId, sharpening, ready]);

  return (
    <div
      className={`yy-cell${active ? ' yy-cell-active' : ''}`}
      style={hidden ? { display: 'none' } : undefined}
      data-testid={`cell-${viewportId}`}
      data-ready={ready ? '1' : '0'}
      data-series-uid={series?.seriesUID ?? ''}
      data-image-id={overlay?.imageId ?? ''}
      data-image-index={overlay?.imageIndex ?? -1}
      data-image-count={overlay?.imageCount ?? 0}
      data-ww={overlay ? Math.round(overlay.windowWidth) : ''}
      data-wc={overlay ? Math.round(overlay.windowCenter) : ''}
      data-zoom={overlay ? overlay.zoom.toFixed(3) : ''}
      onPointerDown={onActivate}
    >
      <div ref={elementRef} className="yy-viewport" data-testid={`viewport-${viewportId}`} onContextMenu={(e) => e.preventDefault()} />
      {preview && !ready && <img className="yy-preview" src={preview} alt="" />}
      {stack && overlay && <CornerOverlay stack={stack} state={overlay} />}
      {error && <div className="yy-cell-error" data-testid={`viewport-error-${viewportId}`}>{error}</div>}
    </div>
  );
}
