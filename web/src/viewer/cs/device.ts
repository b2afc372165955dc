// Device facts the viewer adapts to: phone-sized touch screen, iOS, and the
// WebGL limits that decide whether MPR/3D (volume textures) can work.
export function isPhone(): boolean {
  const coarse = window.matchMedia?.('(pointer: coarse)').matches ?? false;
  return coarse && Math.min(window.innerWidth, window.innerHeight) < 600;
}

export function isIOS(): boolean {
  const ua = navigator.userAgent;
  return /iPad|iPhone|iPod/.test(ua) || (ua.includes('Macintosh') && navigator.maxTouchPoints > 1);
}

export type VolumeSupport = { ok: true; max3dTexture: number; renderer: string } | { ok: false; reason: string };

let cachedSupport: VolumeSupport | undefined;

/**
 * Whether volume rendering (MPR, MIP, 3D) can work here: WebGL2, a 3D texture
 * large enough for a CT series, float textures (linear filtering), and not
 * iOS Safari (MPR/3D render black there: cornerstone3D #2653).
 */
export function volumeSupport(): VolumeSupport {
  if (cachedSupport) return cachedSupport;
  cachedSupport = detect();
  return cachedSupport;
}

function detect(): VolumeSupport {
  if (new URLSearchParams(location.search).get('forceNoVolume') === '1') return { ok: false, reason: 'disabled' };
  if (isIOS()) return { ok: false, reason: 'iOS' };
  const canvas = document.createElement('canvas');
  const gl = canvas.getContext('webgl2');
  if (!gl) return { ok: false, reason: 'no WebGL2' };
  try {
    const max3d = gl.getParameter(gl.MAX_3D_TEXTURE_SIZE) as number;
    if (!max3d || max3d < 256) return { ok: false, reason: `MAX_3D_TEXTURE_SIZE ${max3d}` };
    const floatLinear = !!gl.getExtension('OES_texture_float_linear');
    const colorFloat = !!gl.getExtension('EXT_color_buffer_float');
    if (!floatLinear && !colorFloat) return { ok: false, reason: 'no float textures' };
    const dbg = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = String(dbg ? gl.getParameter(dbg.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
    return { ok: true, max3dTexture: max3d, renderer };
  } finally {
    gl.getExtension('WEBGL_lose_context')?.loseContext();
  }
}
