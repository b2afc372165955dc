// The MPR / 3D workspace, loaded on demand (its own chunk) so the phone stack
// viewer does not ship it: checks the WebGL limits first and falls back to the
// stack view with a message when volumes cannot be rendered here.
import { useEffect } from 'react';
import type { SeriesStack } from '../data/seriesStack';
import { volumeSupport } from '../cs/device';
import { MprView } from './MprView';
import { Vr3dView } from './Vr3dView';

type Props = { stack: SeriesStack; mode: 'mpr' | '3d' | 'stack'; phone: boolean; onFail: (reason: string) => void };

export default function VolumeWorkspace({ stack, mode, onFail }: Props) {
  const support = volumeSupport();
  const maxDim = Math.max(stack.imageIds.length, 512);
  const tooBig = support.ok && maxDim > support.max3dTexture;
  useEffect(() => {
    if (!support.ok) onFail(support.reason);
    else if (tooBig) onFail(`MAX_3D_TEXTURE_SIZE ${support.max3dTexture} < ${maxDim}`);
  }, [support, tooBig, maxDim, onFail]);
  if (!support.ok || tooBig) return null;
  return mode === '3d' ? <Vr3dView key="3d" stack={stack} onFail={onFail} /> : <MprView key="mpr" stack={stack} onFail={onFail} />;
}
