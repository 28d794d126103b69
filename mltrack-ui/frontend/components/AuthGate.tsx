"use client";

import { type FormEvent, type ReactNode, useEffect, useState } from "react";

import { AUTH_REQUIRED_EVENT, authStatus, login } from "@/lib/api";

/** Shows the pages, or a token form when the server asks for one. */
export function AuthGate({ children }: { children: ReactNode }) {
  // Pages render at once (they fetch in parallel); the form replaces them only when the
  // server says a token is needed, so an open UI pays no extra round trip.
  const [needsLogin, setNeedsLogin] = useState(false);
  const [tokenLogin, setTokenLogin] = useState(true);
  const [token, setToken] = useState("");
  const [failed, setFailed] = useState(false);

  useEffect(() => {
    authStatus().then(
      (state) => {
        setNeedsLogin(state.required && !state.authenticated);
        setTokenLogin(state.token_login);
      },
      () => undefined,
    );
    const ask = () => setNeedsLogin(true);
    window.addEventListener(AUTH_REQUIRED_EVENT, ask);
    return () => window.removeEventListener(AUTH_REQUIRED_EVENT, ask);
  }, []);

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (await login(token)) {
      setNeedsLogin(false);
      setFailed(false);
      window.location.reload();
    } else {
      setFailed(true);
    }
  }

  if (needsLogin && !tokenLogin) {
    // Users come from the authenticating proxy in front of the UI: there is no token to type.
    return (
      <div className="login" data-testid="proxy-login">
        <h1>Sign in</h1>
        <p>This MLTrack UI takes its users from the sign-in in front of it. Open it through that address.</p>
      </div>
    );
  }
  if (needsLogin) {
    return (
      <form className="login" onSubmit={submit} data-testid="login-form">
        <h1>Sign in</h1>
        <p>This MLTrack UI is protected. Enter its token.</p>
        <input
          type="password"
          autoComplete="current-password"
          value={token}
          onChange={(e) => setToken(e.target.value)}
          aria-label="token"
        />
        <button type="submit">Sign in</button>
        {failed && <p className="error">Wrong token.</p>}
      </form>
    );
  }
  return <>{children}</>;
}
