// Cine controls for the active viewport: start/end image (1-based), frames
// per second, play/stop.
import { useEffect, useRef, useState } from 'react';
import { useT } from '../../i18n';
import { viewerMessages } from '../messages';
import { CinePlayer } from '../stack/cine';

export function CinePanel({ viewportId, imageCount }: { viewportId: string; imageCount: number }) {
  const t = useT(viewerMessages);
  const [start, setStart] = useState(1);
  const [end, setEnd] = useState(Math.max(1, imageCount));
  const [fps, setFps] = useState(10);
  const [playing, setPlaying] = useState(false);
  const player = useRef<CinePlayer>(undefined);

  useEffect(() => {
    setEnd((e) => (e > imageCount || e < 1 ? Math.max(1, imageCount) : e));
  }, [imageCount]);

  const range = () => {
    const s = Math.min(Math.max(1, start), imageCount);
    const e = Math.min(Math.max(s, end), imageCount);
    return { start: s - 1, end: e - 1, fps };
  };

  useEffect(() => {
    player.current?.update(range());
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [start, end, fps]);

  useEffect(() => {
    player.current?.stop();
    player.current = undefined;
    setPlaying(false);
    return () => player.current?.stop();
  }, [viewportId]);

  const toggle = () => {
    if (playing) {
      player.current?.stop();
      setPlaying(false);
      return;
    }
    player.current = new CinePlayer(viewportId, range());
    player.current.play();
    setPlaying(true);
  };

  return (
    <section className="yy-panel yy-cine" data-testid="cine-panel">
      <header><h3>{t('cine')}</h3></header>
      <label>{t('start')}
        <input type="number" min={1} max={imageCount} value={start} data-testid="cine-start" onChange={(e) => setStart(Number(e.target.value))} />
      </label>
      <label>{t('end')}
        <input type="number" min={1} max={imageCount} value={end} data-testid="cine-end" onChange={(e) => setEnd(Number(e.target.value))} />
      </label>
      <label>{t('fps')} {fps}
        <input type="range" min={1} max={60} value={fps} data-testid="cine-fps" onChange={(e) => setFps(Number(e.target.value))} />
      </label>
      <button type="button" className="yy-primary" data-testid="cine-play" data-playing={playing ? '1' : '0'} onClick={toggle}>
        {playing ? `■ ${t('stop')}` : `▶ ${t('play')}`}
      </button>
    </section>
  );
}
