// A QR code drawn as one SVG path (dark modules on white, 4-module quiet zone).
import { useMemo } from 'react';
import { encodeQr } from './qrcode';

export function QrCode({ text, size = 200, label, testId }: { text: string; size?: number; label: string; testId?: string }) {
  const { path, dim, version } = useMemo(() => {
    const qr = encodeQr(text);
    const quiet = 4;
    let d = '';
    qr.modules.forEach((row, y) =>
      row.forEach((dark, x) => {
        if (dark) d += `M${x + quiet} ${y + quiet}h1v1h-1z`;
      }),
    );
    return { path: d, dim: qr.size + quiet * 2, version: qr.version };
  }, [text]);
  return (
    <svg
      className="qr"
      role="img"
      aria-label={label}
      width={size}
      height={size}
      viewBox={`0 0 ${dim} ${dim}`}
      shapeRendering="crispEdges"
      data-testid={testId}
      data-qr-version={version}
    >
      <rect width={dim} height={dim} fill="#fff" />
      <path d={path} fill="#000" />
    </svg>
  );
}
