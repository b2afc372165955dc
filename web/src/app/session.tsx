// Placeholder: replaced by the app pages.
import type { ReactNode } from 'react';
export function RequireSession({ children }: { children: ReactNode }) {
  return <>{children}</>;
}
