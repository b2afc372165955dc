// Performance marks the viewer sets for its load budgets (each at most once per page).
const done = new Set<string>();

export type MarkName = 'yunying:first-image' | 'yunying:series-loaded'
  // diagnostics of the path to the first image
  | 'yunying:first-preview' | 'yunying:app-loaded' | 'yunying:cs-ready' | 'yunying:study-ready' | 'yunying:metadata-ready' | 'yunying:stack-set';

export function markOnce(name: MarkName) {
  if (done.has(name)) return;
  done.add(name);
  performance.mark(name);
}
