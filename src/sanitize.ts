// The one sanitiser for text that a registry controls: error messages, tag names, media types,
// annotations, URLs. A hostile registry can put terminal escape sequences in any of them (clear the
// screen, set the window title, OSC 8 links, CR and backspace to overwrite what was printed); they are
// escaped before they reach a terminal, a log line, a Markdown report or the audit log.
//
// Used in two places: where registry text enters a message (`registryText`: everything escaped, newlines
// too, so a registry cannot forge a line of our output), and at the output boundary (`sanitize` with
// "lines": our own output keeps its newlines and tabs, anything else is escaped).
//
// Escapes are JSON escapes (`\u001b`, `\r`), so a JSON document stays valid and means the same after
// sanitising: JSON.stringify already escapes C0 controls; the rest (DEL, C1, bidirectional overrides,
// line separators) can only appear inside JSON strings, where a \u escape is the same character.

/**
 * C0 controls, DEL, C1 controls (0x9b is a one-byte CSI to some terminals), the Unicode line and
 * paragraph separators, and the bidirectional embeddings, overrides and isolates that can make text
 * read differently from what it is ("Trojan Source").
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

function escapeOne(ch: string): string {
  return NAMED[ch] ?? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * Escape control characters. "line" (default) escapes every one, for text that must stay on one line;
 * "lines" keeps newlines and tabs (our own multi-line output).
 */
export function sanitize(text: string, mode: 'line' | 'lines' = 'line'): string {
  return text.replace(CONTROLS, (ch) =>
    mode === 'lines' && (ch === '\n' || ch === '\t') ? ch : escapeOne(ch),
  );
}

/** Whether `text` holds anything `sanitize` would escape (in "line" mode). */
export function hasControls(text: string): boolean {
  CONTROLS.lastIndex = 0;
  const found = CONTROLS.test(text);
  CONTROLS.lastIndex = 0;
  return found;
}

/**
 * Text from a registry, for a message: escaped, on one line, and cut to `max` characters (an error
 * body can be anything, of any length).
 */
export function registryText(text: string, max = 300): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return sanitize(cut, 'line');
}

/** A registry-controlled value quoted for a message: `"x/../../victim"`, escaped. */
export function quoted(text: string, max = 140): string {
  return `"${registryText(text, max)}"`;
}

/**
 * `text` (a server's answer to a request that carried `secrets`) with every occurrence of each secret
 * replaced by REDACTED: as sent, and as a URL, an urlencoded form or a JSON string carries it (a realm
 * may echo the form it was posted). `cut`: the text was cut short, so a tail that starts one of them goes
 * too. Empty secrets are ignored.
 */
export function redactSecrets(text: string, secrets: readonly string[], cut = false): string {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (!secret) continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
    forms.add(new URLSearchParams({ s: secret }).toString().slice(2));
    forms.add(JSON.stringify(secret).slice(1, -1));
  }
  // Longest first: a secret's encoded form may contain another secret.
  const longestFirst = [...forms].sort((a, b) => b.length - a.length);
  let out = text;
  for (const form of longestFirst) out = out.split(form).join('REDACTED');
  if (cut) {
    for (const form of longestFirst) {
      for (let n = Math.min(form.length - 1, out.length); n > 0; n--) {
        if (out.endsWith(form.slice(0, n))) {
          out = out.slice(0, -n);
          break;
        }
      }
    }
  }
  return out;
}
