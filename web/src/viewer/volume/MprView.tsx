// MPR: axial, sagittal and coronal planes of the series' volume with
// crosshairs; MIP/MinIP with an adjustable slab (thin-slice reading by slab);
// spine labelling on the sagittal plane, labels shown on every plane they lie near.
import { useEffect, useRef, useState } from 'react';
import { Enums, setVolumesForViewports, type Types, type VolumeViewport } from '@cornerstonejs/core';
import { useT } from '../../i18n';
import { viewerMessages } from '../messages';
import type { SeriesStack } from '../data/seriesStack';
import { getEngine } from '../stack/engine';
import { ensureVolume } from './volumeData';
import { createMprToolGroup, setMprPrimary, MPR_TOOL_GROUP } from './volumeTools';
import { labelsOnPlane, nextVertebra, VERTEBRAE, type SpineLabel } from './spineLabels';
import { ToolGroupManager } from '@cornerstonejs/tools';

const PLANES = [
  { id: 'mpr-axial', orientation: Enums.OrientationAxis.AXIAL, title: 'axial' },
  { id: 'mpr-sagittal', orientation: Enums.OrientationAxis.SAGITTAL, title: 'sagittal' },
  { id: 'mpr-coronal', orientation: Enums.OrientationAxis.CORONAL, title: 'coronal' },
] as const;

type Blend = 'none' | 'mip' | 'minip';
const BLEND: Record<Blend, Enums.BlendModes> = {
  none: Enums.BlendModes.COMPOSITE,
  mip: Enums.BlendModes.MAXIMUM_INTENSITY_BLEND,
  minip: Enums.BlendModes.MINIMUM_INTENSITY_BLEND,
};
const LABEL_TOLERANCE_MM = 8;

function vp(id: string): VolumeViewport | undefined {
  try {
    return getEngine().getViewport(id) as VolumeViewport | undefined;
  } catch {
    return undefined;
  }
}

export function MprView({ stack, onFail }: { stack: SeriesStack; onFail: (reason: string) => void }) {
  const t = useT(viewerMessages);
  const refs = useRef<Record<string, HTMLDivElement | null>>({});
  const [loaded, setLoaded] = useState(false);
  const [ready, setReady] = useState(false);
  const [blend, setBlend] = useState<Blend>('none');
  const [slab, setSlab] = useState(10);
  const [crosshairs, setCrosshairs] = useState(true);
  const [spineOn, setSpineOn] = useState(false);
  const [spineStart, setSpineStart] = useState('T1');
  const [labels, setLabels] = useState<SpineLabel[]>([]);
  const [tick, setTick] = useState(0);
  const failRef = useRef(onFail);
  failRef.current = onFail;

  useEffect(() => {
    const engine = getEngine();
    let cancelled = false;
    const g = createMprToolGroup();
    const bump = () => setTick((x) => x + 1);
    for (const p of PLANES) {
      const element = refs.current[p.id]!;
      engine.enableElement({ viewportId: p.id, type: Enums.ViewportType.ORTHOGRAPHIC, element,
        defaultOptions: { orientation: p.orientation, background: [0, 0, 0] } });
      g.addViewport(p.id, engine.id);
      element.addEventListener(Enums.Events.CAMERA_MODIFIED, bump);
      element.addEventListener(Enums.Events.IMAGE_RENDERED, bump);
    }
    (async () => {
      const { volumeId, done } = await ensureVolume(stack);
      if (cancelled) return;
      await setVolumesForViewports(engine, [{ volumeId }], PLANES.map((p) => p.id));
      if (cancelled) return;
      setMprPrimary(g, 'crosshairs');
      engine.renderViewports(PLANES.map((p) => p.id));
      setReady(true);
      await done;
      if (!cancelled) {
        engine.renderViewports(PLANES.map((p) => p.id));
        setLoaded(true);
      }
    })().catch((e: unknown) => !cancelled && failRef.current(e instanceof Error ? e.message : String(e)));
    return () => {
      cancelled = true;
      for (const p of PLANES) {
        refs.current[p.id]?.removeEventListener(Enums.Events.CAMERA_MODIFIED, bump);
        refs.current[p.id]?.removeEventListener(Enums.Events.IMAGE_RENDERED, bump);
      }
      ToolGroupManager.destroyToolGroup(MPR_TOOL_GROUP);
      for (const p of PLANES) engine.disableElement(p.id);
    };
  }, [stack]);

  // Projection and slab thickness on all three planes.
  useEffect(() => {
    if (!ready) return;
    for (const p of PLANES) {
      const v = vp(p.id);
      if (!v) continue;
      v.setBlendMode(BLEND[blend]);
      if (blend === 'none') v.resetSlabThickness();
      else v.setSlabThickness(slab);
    }
    getEngine().renderViewports(PLANES.map((p) => p.id));
  }, [ready, blend, slab]);

  useEffect(() => {
    const g = ToolGroupManager.getToolGroup(MPR_TOOL_GROUP);
    if (!ready || !g) return;
    setMprPrimary(g, spineOn ? 'none' : crosshairs ? 'crosshairs' : 'wl');
  }, [ready, spineOn, crosshairs]);

  // Spine labelling: clicks on the sagittal plane add the next vertebra.
  useEffect(() => {
    const element = refs.current['mpr-sagittal'];
    if (!spineOn || !element) return;
    const onClick = (e: MouseEvent) => {
      const v = vp('mpr-sagittal');
      if (!v) return;
      const r = element.getBoundingClientRect();
      const world = v.canvasToWorld([e.clientX - r.left, e.clientY - r.top]) as Types.Point3;
      setLabels((ls) => [...ls, { uid: crypto.randomUUID(), name: nextVertebra(ls, spineStart), world }]);
    };
    element.addEventListener('click', onClick);
    return () => element.removeEventListener('click', onClick);
  }, [spineOn, spineStart]);

  const rename = (uid: string, name: string) => setLabels((ls) => ls.map((l) => (l.uid === uid ? { ...l, name } : l)));

  return (
    <div className="yy-vol" data-testid="mpr-view" data-ready={ready ? '1' : '0'} data-loaded={loaded ? '1' : '0'} data-tick={tick}>
      <div className="yy-vol-controls">
        <label>{t('blend')}
          <select data-testid="mpr-blend" value={blend} onChange={(e) => setBlend(e.target.value as Blend)}>
            <option value="none">{t('blendNone')}</option>
            <option value="mip">{t('mip')}</option>
            <option value="minip">{t('minip')}</option>
          </select>
        </label>
        <label>{t('slab')} {slab}
          <input type="range" min={1} max={80} step={1} value={slab} data-testid="mpr-slab" onChange={(e) => setSlab(Number(e.target.value))} />
        </label>
        <button type="button" data-testid="mpr-crosshairs" aria-pressed={crosshairs && !spineOn} onClick={() => { setSpineOn(false); setCrosshairs(!crosshairs); }}>
          ✛ {t('crosshairs')}{crosshairs && !spineOn ? ' ✓' : ''}
        </button>
        <button type="button" data-testid="spine-toggle" aria-pressed={spineOn} onClick={() => setSpineOn(!spineOn)}>
          ⋮ {t('spine')}{spineOn ? ' ✓' : ''}
        </button>
        {spineOn && (
          <label>{t('spineStart')}
            <select data-testid="spine-start" value={spineStart} onChange={(e) => setSpineStart(e.target.value)}>
              {VERTEBRAE.map((v) => <option key={v} value={v}>{v}</option>)}
            </select>
          </label>
        )}
        {spineOn && <span className="yy-muted">{t('spineHint')}</span>}
        {labels.length > 0 && (
          <div className="yy-spine-list" data-testid="spine-list">
            {labels.map((l, i) => (
              <span key={l.uid}>
                <input aria-label={t('rename')} data-testid={`spine-label-${i}`} value={l.name} onChange={(e) => rename(l.uid, e.target.value)} />
                <button type="button" data-testid={`spine-delete-${i}`} onClick={() => setLabels((ls) => ls.filter((x) => x.uid !== l.uid))}>×</button>
              </span>
            ))}
          </div>
        )}
      </div>
      <div className="yy-vol-grid">
        {PLANES.map((p) => {
          const v = ready ? vp(p.id) : undefined;
          const marks = v ? labelsOnPlane(v, labels, LABEL_TOLERANCE_MM) : [];
          return (
            <div key={p.id} className="yy-vol-cell">
              <div ref={(el) => { refs.current[p.id] = el; }} className="yy-viewport" data-testid={p.id} onContextMenu={(e) => e.preventDefault()} />
              <span className="yy-vol-title">{t(p.title)}</span>
              <svg className="yy-spine-svg" width="100%" height="100%" data-testid={`spine-overlay-${p.id}`}>
                {marks.map((m) => (
                  <g key={m.label.uid} data-testid={`spine-mark-${p.id}`} data-name={m.label.name}>
                    <circle cx={m.x} cy={m.y} r={4} fill="#ffd54a" stroke="#000" />
                    <text x={m.x + 8} y={m.y + 4} fill="#ffd54a" stroke="#000" strokeWidth={0.6} fontSize={13} fontWeight={700}>{m.label.name}</text>
                  </g>
                ))}
              </svg>
              {!loaded && <span className="yy-vol-status">{t('loadingVolume')}</span>}
            </div>
          );
        })}
      </div>
    </div>
  );
}
