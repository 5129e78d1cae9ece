// Plain-text tables for people: text columns left-aligned, numbers right-aligned, and the whole table
// fitted to the width of the terminal by shortening the widest shrinkable cells (references in the
// middle, so that both the registry and the repository's last name stay readable).

export interface Column {
  header: string;
  /** Numbers right, text left (the default). */
  align?: 'left' | 'right';
  /**
   * How a cell too wide for the table is shortened: "middle" keeps both ends (references), "end" keeps
   * the start (free text). Columns without it are never shortened.
   */
  shrink?: 'middle' | 'end';
  /** Never shortened below this many characters (default: the header's width, at least 12). */
  min?: number;
}

const GAP = 2;
const ELLIPSIS = '…';

/** `text` in at most `width` characters, shortened as the column says. */
export function shorten(text: string, width: number, how: 'middle' | 'end' = 'middle'): string {
  if (text.length <= width) return text;
  if (width <= 1) return ELLIPSIS.slice(0, width);
  if (how === 'end') return `${text.slice(0, width - 1)}${ELLIPSIS}`;
  // The end of a reference (repository name, tag) tells more than its middle; keep slightly more of it.
  const tail = Math.ceil((width - 1) / 2);
  const head = width - 1 - tail;
  return `${text.slice(0, head)}${ELLIPSIS}${text.slice(text.length - tail)}`;
}

/**
 * Render `rows` under `columns`. With `width`, shrinkable columns give up characters, widest first,
 * until the table fits (or every one is at its minimum).
 */
export function renderTable(columns: Column[], rows: string[][], width?: number): string {
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)));
  if (width !== undefined) {
    const total = () => widths.reduce((n, w) => n + w, 0) + GAP * (columns.length - 1);
    const minOf = (i: number) => {
      const c = columns[i]!;
      return Math.min(widths[i]!, c.min ?? Math.max(c.header.length, 12));
    };
    for (let excess = total() - width; excess > 0; excess = total() - width) {
      // The widest column that may still shrink gives up as much as it can, down to the next widest.
      let widest = -1;
      for (const [i, c] of columns.entries()) {
        if (!c.shrink || widths[i]! <= minOf(i)) continue;
        if (widest < 0 || widths[i]! > widths[widest]!) widest = i;
      }
      if (widest < 0) break;
      const next = Math.max(
        minOf(widest),
        ...columns.map((c, i) => (c.shrink && i !== widest ? widths[i]! : 0)),
      );
      const give = Math.min(excess, Math.max(1, widths[widest]! - next));
      widths[widest] = Math.max(minOf(widest), widths[widest]! - give);
    }
  }
  const line = (cells: string[]) =>
    columns
      .map((c, i) => {
        const w = widths[i]!;
        const text = shorten(cells[i] ?? '', w, c.shrink ?? 'end');
        return c.align === 'right' ? text.padStart(w) : text.padEnd(w);
      })
      .join(' '.repeat(GAP))
      .trimEnd();
  return [line(columns.map((c) => c.header)), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join(
    '\n',
  );
}

/**
 * The width to fit human output to: the terminal's, else $COLUMNS (what shells export, and what a
 * test or a CI log viewer can set); undefined when neither is known (a pipe, a file).
 */
export function outputWidth(
  stream: { isTTY?: boolean; columns?: number } = process.stderr,
): number | undefined {
  if (stream.isTTY && stream.columns) return stream.columns;
  const env = Number(process.env.COLUMNS);
  return Number.isInteger(env) && env > 0 ? env : undefined;
}
