// 3D volume rendering (VOLUME_3D) of the series with tissue presets and
// cropping by six clipping planes (a box along the patient axes). On
// software renderers the volume is thinned and sampled more coarsely so it
// renders in seconds rather than minutes.
import { useEffect, useRef, useState } from 'react';
import { Enums, setVolumesForViewports, type Types, type VolumeViewport3D } from '@cornerstonejs/core';
import { ToolGroupManager } from '@cornerstonejs/tools';
import vtkPlane from '@kitware/vtk.js/Common/DataModel/Plane';
import { useT } from '../../i18n';
import { viewerMessages, type ViewerMessageKey } from '../messages';
import type { SeriesStack } from '../data/seriesStack';
import { getEngine } from '../stack/engine';
import { ensureVolume, isSoftwareRenderer } from './volumeData';
import { createVrToolGroup, VR_TOOL_GROUP } from './volumeTools';

const VR_ID = 'vr-3d';
const PRESETS: { id: string; label: ViewerMessageKey; preset: string }[] = [
  { id: 'bone', label: 'bone', preset: 'CT-Bone' },
  { id: 'soft', label: 'softTissue', preset: 'CT-Soft-Tissue' },
  { id: 'lung', label: 'lung', preset: 'CT-Lung' },
  { id: 'vessels', label: 'vessels', preset: 'CT-Chest-Vessels' },
  { id: 'aaa', label: 'vessels', preset: 'CT-AAA' },
];

type Crop = { x: [number, number]; y: [number, number]; z: [number, number] }; // fractions of the bounds
const FULL: Crop = { x: [0, 1], y: [0, 1], z: [0, 1] };

function viewport(): VolumeViewport3D | undefined {
  try {
    return getEngine().getViewport(VR_ID) as VolumeViewport3D | undefined;
  } catch {
    return undefined;
  }
}

function applyCrop(v: VolumeViewport3D, crop: Crop) {
  const actor = v.getDefaultActor()?.actor as unknown as { getMapper: () => { removeAllClippingPlanes: () => void; addClippingPlane: (p: unknown) => void }; getBounds: () => number[] };
  if (!actor) return;
  const mapper = actor.getMapper();
  const b = actor.getBounds(); // [xmin, xmax, ymin, ymax, zmin, zmax]
  mapper.removeAllClippingPlanes();
  const axes: [keyof Crop, number][] = [['x', 0], ['y', 1], ['z', 2]];
  for (const [k, i] of axes) {
    const [lo, hi] = crop[k];
    const min = b[2 * i] + lo * (b[2 * i + 1] - b[2 * i]);
    const max = b[2 * i] + hi * (b[2 * i + 1] - b[2 * i]);
    const n1: [number, number, number] = [0, 0, 0]; n1[i] = 1;
    const n2: [number, number, number] = [0, 0, 0]; n2[i] = -1;
    const o1: [number, number, number] = [0, 0, 0]; o1[i] = min;
    const o2: [number, number, number] = [0, 0, 0]; o2[i] = max;
    if (lo > 0) mapper.addClippingPlane(vtkPlane.newInstance({ origin: o1, normal: n1 }));
    if (hi < 1) mapper.addClippingPlane(vtkPlane.newInstance({ origin: o2, normal: n2 }));
  }
}

export function Vr3dView({ stack, onFail }: { stack: SeriesStack; onFail: (reason: string) => void }) {
  const t = useT(viewerMessages);
  const ref = useRef<HTMLDivElement>(null);
  const [ready, setReady] = useState(false);
  const [loaded, setLoaded] = useState(false);
  const [renders, setRenders] = useState(0);
  const [preset, setPreset] = useState('bone');
  const [crop, setCrop] = useState<Crop>(FULL);
  const failRef = useRef(onFail);
  failRef.current = onFail;
  const software = isSoftwareRenderer();

  useEffect(() => {
    const engine = getEngine();
    const element = ref.current!;
    let cancelled = false;
    engine.enableElement({ viewportId: VR_ID, type: Enums.ViewportType.VOLUME_3D, element,
      defaultOptions: { orientation: Enums.OrientationAxis.CORONAL, background: [0.02, 0.03, 0.06] as Types.Point3 } });
    createVrToolGroup().addViewport(VR_ID, engine.id);
    const onRendered = () => setRenders((n) => n + 1);
    element.addEventListener(Enums.Events.IMAGE_RENDERED, onRendered);
    (async () => {
      // Software GL: every 2nd slice (or more for long series) keeps rendering to seconds.
      const step = software ? Math.max(2, Math.ceil(stack.imageIds.length / 40)) : 1;
      const { volumeId, done } = await ensureVolume(stack, step);
      if (cancelled) return;
      await done; // a streaming 3D render re-renders per slice: wait for the whole volume
      if (cancelled) return;
      await setVolumesForViewports(engine, [{ volumeId }], [VR_ID]);
      const v = viewport();
      if (!v || cancelled) return;
      v.setProperties({ preset: 'CT-Bone', ...(software ? { sampleDistanceMultiplier: 4 } : {}) } as never);
      v.resetCamera();
      v.render();
      setReady(true);
      setLoaded(true);
    })().catch((e: unknown) => !cancelled && failRef.current(e instanceof Error ? e.message : String(e)));
    return () => {
      cancelled = true;
      element.removeEventListener(Enums.Events.IMAGE_RENDERED, onRendered);
      ToolGroupManager.destroyToolGroup(VR_TOOL_GROUP);
      engine.disableElement(VR_ID);
    };
  }, [stack, software]);

  useEffect(() => {
    const v = viewport();
    if (!ready || !v) return;
    const p = PRESETS.find((x) => x.id === preset)!;
    v.setProperties({ preset: p.preset });
    applyCrop(v, crop);
    v.render();
  }, [ready, preset, crop]);

  const slider = (axis: keyof Crop, end: 0 | 1, testId: string) => (
    <input type="range" min={0} max={100} value={Math.round(crop[axis][end] * 100)} data-testid={testId}
      onChange={(e) => {
        const v = Number(e.target.value) / 100;
        setCrop((c) => {
          const pair: [number, number] = [...c[axis]] as [number, number];
          pair[end] = v;
          if (pair[0] > pair[1] - 0.05) return c;
          return { ...c, [axis]: pair };
        });
      }} />
  );

  return (
    <div className="yy-vol" data-testid="vr-view" data-ready={ready ? '1' : '0'} data-loaded={loaded ? '1' : '0'} data-renders={renders}>
      <div className="yy-vol-controls">
        <label>{t('vrPreset')}
          <select data-testid="vr-preset" value={preset} onChange={(e) => setPreset(e.target.value)}>
            {PRESETS.map((p) => <option key={p.id} value={p.id}>{t(p.label)} ({p.preset})</option>)}
          </select>
        </label>
        <span>{t('crop')}:</span>
        <label>R–L {slider('x', 0, 'vr-crop-x0')}{slider('x', 1, 'vr-crop-x1')}</label>
        <label>A–P {slider('y', 0, 'vr-crop-y0')}{slider('y', 1, 'vr-crop-y1')}</label>
        <label>I–S {slider('z', 0, 'vr-crop-z0')}{slider('z', 1, 'vr-crop-z1')}</label>
        <button type="button" data-testid="vr-crop-reset" onClick={() => setCrop(FULL)}>⟲</button>
      </div>
      <div className="yy-vol-grid" style={{ gridTemplateColumns: '1fr' }}>
        <div className="yy-vol-cell">
          <div ref={ref} className={`yy-viewport${software ? ' yy-vr-small' : ''}`} data-testid="vr-viewport" onContextMenu={(e) => e.preventDefault()} />
          <span className="yy-vol-title">{t('volume3d')}</span>
          {!loaded && <span className="yy-vol-status">{t('loadingVolume')}</span>}
        </div>
      </div>
    </div>
  );
}
