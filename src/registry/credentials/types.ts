// What a credential source can hand to the auth layer.

export type Credential =
  /** Username and password (or token used as a password), for Basic auth and the token realm. */
  | { kind: 'basic'; username: string; password: string }
  /** An OAuth2 refresh/identity token (docker login with an identity provider): POST form to the realm. */
  | { kind: 'identity-token'; username?: string; token: string };

export interface CredentialSource {
  /** Human description for messages, e.g. "docker config /home/u/.docker/config.json". Never contains secrets. */
  readonly description: string;
  /** Credentials for a registry host ("quay.io", "localhost:5000", "registry-1.docker.io"); undefined = none here. */
  lookup(host: string): Promise<Credential | undefined>;
}

/** A found credential together with where it came from (for messages; never the secret). */
export interface FoundCredential {
  credential: Credential;
  source: string;
  /** Epoch milliseconds when it expires, for credentials an API issued (an ECR token); for auth check. */
  expiresAt?: number;
}
