/** The login form: an API key and its secret, exchanged for a session cookie (POST /api/session). */
import { useState } from 'preact/hooks';
import { describeFailure, request } from '../api';
import { ErrorNote } from '../components/common';

export function LoginPage({ onLoggedIn, notice }: { onLoggedIn: () => void; notice?: string | undefined }) {
  const [key, setKey] = useState('');
  const [secret, setSecret] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await request('POST', '/api/session', {
        body: { template: { href: 'session-template/api-key', key: key.trim(), secret: secret.trim() } },
      });
      setSecret('');
      onLoggedIn();
    } catch (failure) {
      setError(describeFailure(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" tabIndex={-1} class="login">
      <h1>zk-job-engine</h1>
      <form onSubmit={(event) => void submit(event)} aria-describedby={error === undefined ? undefined : 'login-error'}>
        <h2>Log in with an API key</h2>
        {notice === undefined ? null : <p class="notice">{notice}</p>}
        <label for="login-key">API key</label>
        <input
          id="login-key"
          name="key"
          autocomplete="username"
          placeholder="credential/…"
          required
          value={key}
          onInput={(event) => {
            setKey(event.currentTarget.value);
          }}
        />
        <label for="login-secret">Secret</label>
        <input
          id="login-secret"
          name="secret"
          type="password"
          autocomplete="current-password"
          required
          value={secret}
          onInput={(event) => {
            setSecret(event.currentTarget.value);
          }}
        />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
        {error === undefined ? null : (
          <div id="login-error">
            <ErrorNote>{error}</ErrorNote>
          </div>
        )}
        <p class="hint">
          Keys are made with <code>job-api create-key viewer</code> (or operator, admin). The session lasts until you log out.
        </p>
      </form>
    </main>
  );
}
