// What a session must do before it may use the platform, one step at a
// time, as the server lists them: change the password, enrol the second
// factor. Shown by RequireSession instead of the page.
import { AppHeader } from '../AppHeader';
import { useSession } from '../session';
import { PasswordChange } from './PasswordChange';
import { TotpEnrolment } from './TotpEnrolment';

export function PendingSteps() {
  const { user, refresh } = useSession();
  const step = user.pending[0];
  const done = () => void refresh();
  return (
    <div className="app-shell">
      <AppHeader />
      <main className="step-page" data-testid="pending-steps" data-step={step}>
        {step === 'change-password' ? <PasswordChange onDone={done} /> : <TotpEnrolment onDone={done} />}
      </main>
    </div>
  );
}
