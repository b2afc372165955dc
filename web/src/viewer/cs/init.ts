// One-time initialisation of Cornerstone3D for the viewer: core rendering,
// tools, and the DICOM image loader with web-worker decoding (wadors scheme).
import { init as coreInit, imageRetrievalPoolManager, Enums, cache } from '@cornerstonejs/core';
import { init as toolsInit } from '@cornerstonejs/tools';
import { init as dicomImageLoaderInit } from '@cornerstonejs/dicom-image-loader';
import { isPhone } from './device';
import { frameHeaders, onFrameError } from '../data/transferSyntax';
import { announceRetrieving } from '../data/retrieving';

let ready: Promise<void> | undefined;

export function initCornerstone(): Promise<void> {
  ready ??= (async () => {
    const phone = isPhone();
    coreInit({ isMobile: phone } as never);
    toolsInit();
    const cores = navigator.hardwareConcurrency || 2;
    dicomImageLoaderInit({
      maxWebWorkers: Math.max(2, Math.min(4, cores - 1)),
      beforeSend: () => frameHeaders(),
      errorInterceptor: (e) => {
        if (e.status === 503) announceRetrieving(60);
        void onFrameError(e.status ?? 0);
      },
    });
    // Loopback/HTTP/2: more parallel frame requests than the defaults.
    imageRetrievalPoolManager.setMaxSimultaneousRequests(Enums.RequestType.Interaction, 6);
    imageRetrievalPoolManager.setMaxSimultaneousRequests(Enums.RequestType.Prefetch, 8);
    // Phones (iOS reloads the page above ~1 GB): a smaller image cache.
    if (phone) cache.setMaxCacheSize(768 * 1024 * 1024);
  })();
  return ready;
}
