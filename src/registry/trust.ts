// The credential rule: which origin a credential may go to. One place, next to the transport, which
// asks `mayCarry` before it attaches anything to a request (every hop of every redirect); the auth layer
// asks `mayAdoptChallenge` and `checkRealm`; the client asks `checkUploadLocation`.
//
// The rule (README "Security", docs/architecture.md):
//
// - Credentials (Basic, Bearer tokens, identity tokens) of a registry go only to requests whose origin
//   (scheme, host, port) is the registry's own, or the token realm that registry's own challenge named.
// - A challenge met on any other origin (a redirect target, a storage host) is not the registry's: it is
//   never answered with the registry's credentials and never adopted.
// - A Location or Link on another origin is followed without credentials (redirects, tag-list pages), or
//   refused (upload sessions: the blob and the session would go to a host the user never named).
// - Never from HTTPS to HTTP: a redirect or a tag list's next-page Link from HTTPS to plain HTTP is
//   refused, and an HTTPS registry's token realm on plain HTTP is refused (it would carry the
//   credentials in clear text).
// - Only http: and https: URLs are ever requested (no file:, data:, ...).

import { AuthError, type ErrorContext, UntrustedError } from '../errors.js';
import { quoted, registryText } from '../sanitize.js';

/** "https://registry.example:5000": scheme, host and port, as URL.origin spells them. */
export type Origin = string;

/** A credential for one request, and the one origin it may go to. */
export interface Credentials {
  /** The Authorization header value, when the credential travels in a header. */
  authorization?: string;
  /** The origin that owns it: the registry's, or its token realm's. */
  origin: Origin;
  /** The request body itself holds a credential (the OAuth2 form with a refresh token). */
  inBody?: boolean;
}

export function isHttpUrl(url: URL): boolean {
  return url.protocol === 'http:' || url.protocol === 'https:';
}

/**
 * Text that should have been a URL and does not parse (a Location with a port out of range), for a
 * message: quoted, only what precedes its query or fragment, and without user info. The rest is never
 * shown: a signed storage URL keeps its signature and token there, and redactUrl cannot take it apart.
 */
export function unparsedUrlText(text: string, max = 200): string {
  const end = text.search(/[?#]/);
  const shown = (end < 0 ? text : text.slice(0, end)).replace(
    /^([A-Za-z][A-Za-z0-9+.-]*:)?\/\/[^/]*@/,
    '$1//',
  );
  return `${quoted(shown, max)}${end < 0 ? '' : ' (the rest not shown)'}`;
}

/** The rule itself: may credentials owned by `owner` be sent with a request to `url`? */
export function mayCarry(url: URL, owner: Origin): boolean {
  // Different scheme or port is a different origin: this also rules out HTTPS → HTTP.
  return isHttpUrl(url) && url.origin === owner;
}

/** Whether going from `from` to `to` leaves HTTPS for plain HTTP (what travelled encrypted would not). */
export function downgrades(from: URL, to: URL): boolean {
  return from.protocol === 'https:' && to.protocol === 'http:';
}

/** A URL for a message: scheme, host, port and path, without the query (signatures, capabilities). */
export function withoutQuery(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** Whether a 401 challenge from `responseUrl` may teach the registry at `registryOrigin` how to log in. */
export function mayAdoptChallenge(responseUrl: URL, registryOrigin: Origin): boolean {
  return responseUrl.origin === registryOrigin;
}

/**
 * The token realm named by a registry's own challenge, checked: an http(s) URL, and not plain HTTP when
 * the registry itself is HTTPS (the credentials would cross the network in clear text; refused, not
 * downgraded silently).
 */
export function checkRealm(realm: string | undefined, registryBase: URL, context: ErrorContext): URL {
  const registry = registryBase.host;
  if (!realm) {
    throw new AuthError(`registry ${registry} sent a Bearer challenge without a realm`, { context });
  }
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    throw new AuthError(`registry ${registry} sent an invalid token realm ${unparsedUrlText(realm)}`, {
      context,
    });
  }
  if (!isHttpUrl(url)) {
    throw new AuthError(
      `registry ${registry} named a token realm with the scheme ${quoted(url.protocol)}; only https (or http for a plain-HTTP registry) is used`,
      { context },
    );
  }
  if (registryBase.protocol === 'https:' && url.protocol === 'http:') {
    throw new AuthError(
      `registry ${registry} is HTTPS but named a token realm on plain HTTP (${registryText(url.origin)}); regmirror refuses to send credentials there in clear text`,
      {
        context,
        hint: 'the registry is misconfigured (or not the registry you think): its token server must use HTTPS',
      },
    );
  }
  return url;
}

/**
 * An upload session's Location (from POST, PATCH or PUT answers), resolved against the URL that answered.
 * It must stay on the registry's origin: a session elsewhere would carry the blob, and the registry's
 * credentials, to a host the user never named. Refused rather than followed without credentials, because
 * an upload without them is still a write to somewhere else.
 */
export function checkUploadLocation(
  location: string,
  answeredBy: URL,
  registryOrigin: Origin,
  context: ErrorContext,
): URL {
  let url: URL;
  try {
    url = new URL(location, answeredBy);
  } catch {
    throw new UntrustedError(`the upload Location ${unparsedUrlText(location)} is not a URL`, { context });
  }
  if (url.origin !== registryOrigin || !isHttpUrl(url)) {
    throw new UntrustedError(
      `the registry's upload Location points at another origin (${registryText(isHttpUrl(url) ? url.origin : url.protocol)}, not ${registryOrigin}); refused: an upload session must stay on the registry it was opened on`,
      {
        context,
        hint: 'a registry behind a proxy may build Location URLs from the wrong host name; fix its public URL setting',
      },
    );
  }
  return url;
}
