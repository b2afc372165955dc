// A study's thumbnail from the server (/thumbnail, rendered at 96×96),
// loaded lazily, with a placeholder showing the modality until it arrives or
// when there is none.
import { useState } from 'react';
import { studyThumbnailUrl } from '../../api/studies';

export function Thumbnail({ studyUid, modality }: { studyUid: string; modality: string }) {
  const [state, setState] = useState<'loading' | 'loaded' | 'failed'>('loading');
  return (
    <span className={`thumb thumb--${state}`} data-testid="study-thumb-box">
      {state !== 'loaded' && (
        <span className="thumb__placeholder" aria-hidden="true">
          {modality || '—'}
        </span>
      )}
      {state !== 'failed' && (
        <img
          src={studyThumbnailUrl(studyUid)}
          alt=""
          width={96}
          height={96}
          loading="lazy"
          decoding="async"
          data-testid="study-thumb"
          onLoad={() => setState('loaded')}
          onError={() => setState('failed')}
        />
      )}
    </span>
  );
}
