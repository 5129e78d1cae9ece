// A strict parser of the Prometheus text exposition format (0.0.4), the one node_exporter's textfile
// collector and the Pushgateway read: an independent reader of what `--metrics-file` writes. It refuses
// everything the format does not allow, where Prometheus' own parser would refuse it too: malformed names
// and label names, bad escapes, values that are not Go floats, HELP or TYPE twice, TYPE after a sample, a
// family split in two, the same series twice, a missing final newline.

export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
  timestamp?: number;
}

export interface ParsedFamily {
  name: string;
  help?: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  samples: ParsedSample[];
}

export class ExpositionError extends Error {
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
/** Go's strconv.ParseFloat, as Prometheus reads values: decimal or exponent forms, Inf and NaN. */
const FLOAT = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Inf|inf|NaN|nan)$/;

/** The family a sample belongs to: histogram and summary series carry suffixes. */
function familyOf(name: string, families: Map<string, ParsedFamily>): string {
  for (const suffix of ['_bucket', '_count', '_sum']) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const f = families.get(base);
      if (f && (f.type === 'histogram' || f.type === 'summary')) return base;
    }
  }
  return name;
}

function parseValue(text: string, line: number): number {
  if (!FLOAT.test(text)) throw new ExpositionError(line, `"${text}" is not a sample value`);
  if (/^[+-]?inf$/i.test(text))
    return text.startsWith('-') ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  if (/^nan$/i.test(text)) return Number.NaN;
  return Number(text);
}

/** `{a="x",b="y\"z"}` starting at `at`; returns the labels and the index after `}`. */
function parseLabels(
  text: string,
  at: number,
  line: number,
): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = at + 1;
  for (;;) {
    if (text[i] === '}') return { labels, end: i + 1 };
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new ExpositionError(line, 'label without "="');
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new ExpositionError(line, `"${name}" is not a label name`);
    if (name.startsWith('__')) throw new ExpositionError(line, `label name "${name}" is reserved`);
    if (name in labels) throw new ExpositionError(line, `label "${name}" twice`);
    if (text[eq + 1] !== '"') throw new ExpositionError(line, `label "${name}": value not quoted`);
    let value = '';
    let j = eq + 2;
    for (; ; j++) {
      const c = text[j];
      if (c === undefined) throw new ExpositionError(line, `label "${name}": unterminated value`);
      if (c === '"') break;
      if (c === '\\') {
        const n = text[++j];
        if (n === '\\') value += '\\';
        else if (n === '"') value += '"';
        else if (n === 'n') value += '\n';
        else throw new ExpositionError(line, `label "${name}": invalid escape "\\${n ?? ''}"`);
      } else value += c;
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new ExpositionError(line, `expected "," or "}" after label "${name}"`);
  }
}

export function parseExposition(text: string): Map<string, ParsedFamily> {
  if (text.length > 0 && !text.endsWith('\n')) throw new ExpositionError(0, 'the last line has no newline');
  const families = new Map<string, ParsedFamily>();
  const seenSeries = new Set<string>();
  const closed = new Set<string>();
  const typed = new Set<string>();
  let current: string | undefined;
  const family = (name: string): ParsedFamily => {
    let f = families.get(name);
    if (!f) {
      f = { name, type: 'untyped', samples: [] };
      families.set(name, f);
    }
    return f;
  };
  /** Families must be contiguous: once another one started, this one may not come back. */
  const enter = (name: string, line: number) => {
    if (current === name) return;
    if (closed.has(name)) throw new ExpositionError(line, `${name}: its lines are not all in one group`);
    if (current !== undefined) closed.add(current);
    current = name;
  };
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    if (raw === '' || /^\s*$/.test(raw)) return;
    if (raw.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(raw);
      if (!m) return; // A plain comment.
      const [, kind, name, rest = ''] = m as unknown as [string, string, string, string | undefined];
      if (!METRIC_NAME.test(name)) throw new ExpositionError(line, `"${name}" is not a metric name`);
      enter(name, line);
      const f = family(name);
      if (kind === 'HELP') {
        if (f.help !== undefined) throw new ExpositionError(line, `${name}: HELP twice`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, '')))
          throw new ExpositionError(line, `${name}: invalid escape in HELP`);
        f.help = rest.replace(/\\(\\|n)/g, (_s, c: string) => (c === 'n' ? '\n' : '\\'));
      } else {
        if (!TYPES.has(rest.trim())) throw new ExpositionError(line, `${name}: unknown type "${rest}"`);
        if (f.samples.length > 0) throw new ExpositionError(line, `${name}: TYPE after its samples`);
        if (typed.has(name)) throw new ExpositionError(line, `${name}: TYPE twice`);
        f.type = rest.trim() as ParsedFamily['type'];
        typed.add(name);
      }
      return;
    }
    const nameEnd = raw.search(/[{\s]/);
    if (nameEnd <= 0) throw new ExpositionError(line, 'a sample needs a name and a value');
    const name = raw.slice(0, nameEnd);
    if (!METRIC_NAME.test(name)) throw new ExpositionError(line, `"${name}" is not a metric name`);
    let rest = raw.slice(nameEnd);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) {
      const parsed = parseLabels(rest, 0, line);
      labels = parsed.labels;
      rest = rest.slice(parsed.end);
    }
    const fields = rest.trim().split(/\s+/);
    if (!/^\s/.test(rest) || fields.length < 1 || fields.length > 2 || fields[0] === '')
      throw new ExpositionError(line, `${name}: expected " value [timestamp]"`);
    const value = parseValue(fields[0]!, line);
    let timestamp: number | undefined;
    if (fields[1] !== undefined) {
      if (!/^-?\d+$/.test(fields[1]))
        throw new ExpositionError(line, `${name}: "${fields[1]}" is not a timestamp`);
      timestamp = Number(fields[1]);
    }
    const owner = familyOf(name, families);
    enter(owner, line);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seenSeries.has(key))
      throw new ExpositionError(line, `${name}${JSON.stringify(labels)}: the same series twice`);
    seenSeries.add(key);
    family(owner).samples.push({ name, labels, value, ...(timestamp !== undefined ? { timestamp } : {}) });
  });
  return families;
}

/** The value of the one sample of `name` whose labels include `labels`; throws when there is not exactly one. */
export function sampleValue(
  families: Map<string, ParsedFamily>,
  name: string,
  labels: Record<string, string>,
): number {
  const matches = (families.get(name)?.samples ?? []).filter((s) =>
    Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (matches.length !== 1) {
    throw new Error(`${matches.length} samples of ${name}${JSON.stringify(labels)}`);
  }
  return matches[0]!.value;
}
