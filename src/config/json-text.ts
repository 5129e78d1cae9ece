// JSON.parse with errors a person can act on. Node's messages name a character offset at best
// ("... in JSON at position 312") and sometimes nothing; a config error must say line and column.
// JSON.parse does the parsing; on failure a small recogniser walks the text to find where and why.

export class JsonSyntaxError extends Error {
  /** 1-based. */
  readonly line: number;
  /** 1-based, in characters. */
  readonly column: number;
  readonly reason: string;
  constructor(reason: string, line: number, column: number) {
    super(`${reason} at line ${line}, column ${column}`);
    this.name = 'JsonSyntaxError';
    this.reason = reason;
    this.line = line;
    this.column = column;
  }
}

export function parseJsonText(text: string): unknown {
  // Editors on Windows like to start files with a byte-order mark; JSON.parse does not.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch (err) {
    const found = locateJsonError(body) ?? {
      offset: offsetFromMessage(err) ?? 0,
      reason: (err as Error).message,
    };
    const { line, column } = lineAndColumn(body, found.offset);
    throw new JsonSyntaxError(found.reason, line, column);
  }
}

export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

function offsetFromMessage(err: unknown): number | undefined {
  const match = /at position (\d+)/.exec(err instanceof Error ? err.message : '');
  return match ? Number(match[1]) : undefined;
}

class Found {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {}
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/** Where and why `text` is not JSON; undefined if it is (then JSON.parse's own message stands). */
export function locateJsonError(text: string): { offset: number; reason: string } | undefined {
  let i = 0;
  const fail = (reason: string, at = i): never => {
    throw new Found(at, reason);
  };
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const unexpected = (expected: string): never => {
    const c = text[i];
    if (c === undefined) return fail(`unexpected end of file; expected ${expected}`);
    if (c === "'") return fail('single quotes; JSON strings need double quotes');
    if (c === '/')
      return fail('comments are not allowed in JSON (use .mirrorrc.yaml for a config with comments)');
    if (/[A-Za-z_$]/.test(c))
      return fail(`unquoted text; expected ${expected} (names and strings need double quotes)`);
    return fail(`unexpected ${JSON.stringify(c)}; expected ${expected}`);
  };
  const string = () => {
    const start = i;
    i++;
    while (i < text.length) {
      const c = text[i]!;
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        const escaped = text[i + 1];
        if (escaped === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else if (escaped !== undefined && '"\\/bfnrt'.includes(escaped)) i += 2;
        else fail('invalid escape in a string (write \\\\ for a backslash)');
        continue;
      }
      if (c.charCodeAt(0) < 0x20) fail('line break or control character inside a string');
      i++;
    }
    fail('unterminated string', start);
  };
  const value = (): void => {
    space();
    const c = text[i];
    if (c === '{') {
      i++;
      space();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        space();
        if (text[i] === '}') fail('trailing comma before "}"; remove it');
        if (text[i] !== '"') unexpected('a property name in double quotes');
        string();
        space();
        if (text[i] !== ':') unexpected('":" after the property name');
        i++;
        value();
        space();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        unexpected('"," or "}" after a property value');
      }
    }
    if (c === '[') {
      i++;
      space();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        space();
        if (text[i] === ']') fail('trailing comma before "]"; remove it');
        value();
        space();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        unexpected('"," or "]" after a list item');
      }
    }
    if (c === '"') {
      string();
      return;
    }
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, i)) {
        i += literal.length;
        return;
      }
    }
    NUMBER.lastIndex = i;
    if (c !== undefined && NUMBER.test(text)) {
      i = NUMBER.lastIndex;
      return;
    }
    unexpected('a value');
  };
  try {
    value();
    space();
    if (i < text.length) fail('unexpected text after the end of the JSON value');
    return undefined;
  } catch (err) {
    if (err instanceof Found) return { offset: err.offset, reason: err.reason };
    throw err;
  }
}
