// Synchronised scrolling: stack viewports showing series of the same Frame of
// Reference scroll together (one image-slice synchroniser per FoR; parallel
// series only — the callback skips non-coplanar ones such as a localizer).
import { synchronizers, SynchronizerManager } from '@cornerstonejs/tools';

const byViewport = new Map<string, string>(); // viewportId → synchronizer id
let enabled = true;

function syncId(forUID: string) {
  return `yy-slice-sync-${forUID}`;
}

export function attachSync(renderingEngineId: string, viewportId: string, forUID: string) {
  detachSync(renderingEngineId, viewportId);
  if (!forUID) return;
  const id = syncId(forUID);
  const s = SynchronizerManager.getSynchronizer(id) ?? synchronizers.createImageSliceSynchronizer(id);
  s.add({ renderingEngineId, viewportId });
  s.setEnabled(enabled);
  byViewport.set(viewportId, id);
}

export function detachSync(renderingEngineId: string, viewportId: string) {
  const id = byViewport.get(viewportId);
  if (!id) return;
  SynchronizerManager.getSynchronizer(id)?.remove({ renderingEngineId, viewportId });
  byViewport.delete(viewportId);
}

export function setSyncEnabled(on: boolean) {
  enabled = on;
  for (const id of new Set(byViewport.values())) SynchronizerManager.getSynchronizer(id)?.setEnabled(on);
}

export function destroySync() {
  for (const id of new Set(byViewport.values())) SynchronizerManager.destroySynchronizer(id);
  byViewport.clear();
}
