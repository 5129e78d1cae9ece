// Renders engine events for people: a live ora line on a terminal (images done of total, bytes and
// rate, what is in flight), one plain line per finished image elsewhere.

import type { CopyEvent } from '../copy/events.js';
import type { ImageResult } from '../copy/result.js';
import { referrerLines } from './commands/copy.js';
import { formatBytes, formatDuration, plural } from './format.js';
import type { Output } from './output.js';

export function imageLine(r: ImageResult, dryRun: boolean): string {
  const counts = new Map<string, number>();
  for (const t of r.targets) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
  const failed = counts.get('failed') ?? 0;
  const mark = r.error || failed > 0 ? '✗' : dryRun ? '·' : '✓';
  const parts = [...counts].map(([status, n]) => `${n} ${status}`);
  const bytes = r.targets.reduce((n, t) => n + t.bytesUploaded, 0);
  const verb = dryRun ? 'to upload' : 'uploaded';
  let line = `${mark} ${r.source}: ${parts.join(', ') || 'no targets'}`;
  if (bytes > 0) line += `, ${formatBytes(bytes)} ${verb}`;
  const referrers = r.targets.reduce((n, t) => n + t.referrersCopied, 0);
  if (referrers > 0) line += `, ${plural(referrers, 'referrer')} ${dryRun ? 'to copy' : 'copied'}`;
  line += ` (${formatDuration(r.durationMs)})`;
  if (r.error) line += `\n    ${r.error}`;
  for (const t of r.targets) {
    if (t.status === 'failed' && t.error && t.error !== 'not copied: the source failed') {
      line += `\n    ${t.target}: ${t.error}`;
    }
    if (t.status === 'kept') {
      const rule = t.refusedBy === 'immutable-tags' ? "the repository's immutable tags" : 'overwrite "never"';
      line += `\n    ${t.target}: kept at ${t.digest} (${rule})`;
    }
    // A plan lists the repositories it would create once, after the summary.
    if (t.repositoryCreated && !dryRun) line += `\n    ${t.target}: repository created`;
    if (dryRun && t.referrersCopied > 0) {
      line += `\n    ${t.target}: ${plural(t.referrersCopied, 'referrer')} to copy${referrerLines(t)}`;
    }
  }
  return line;
}

export class Progress {
  private total = 0;
  private done = 0;
  private bytes = 0;
  private readonly started = Date.now();
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly out: Output,
    private readonly dryRun: boolean,
  ) {}

  setTotal(n: number): void {
    this.total = n;
    this.render();
  }

  readonly onEvent = (e: CopyEvent): void => {
    switch (e.type) {
      case 'image-start':
        this.inFlight.add(e.source);
        break;
      case 'blob-progress':
        this.bytes += e.bytes;
        break;
      case 'image-done':
        this.inFlight.delete(e.result.source);
        this.done++;
        this.out.info(imageLine(e.result, this.dryRun));
        break;
      default:
        return;
    }
    this.render();
  };

  private render(): void {
    if (!this.out.interactive) return;
    const seconds = Math.max((Date.now() - this.started) / 1000, 0.001);
    const rate = `${formatBytes(Math.round(this.bytes / seconds))}/s`;
    const current = [...this.inFlight].slice(0, 2).join(', ');
    const more = this.inFlight.size > 2 ? ` +${this.inFlight.size - 2}` : '';
    this.out.status(
      `${this.dryRun ? 'planning' : 'syncing'} ${this.done}/${this.total} images, ${formatBytes(this.bytes)} (${rate})${current ? ` — ${current}${more}` : ''}`,
    );
  }
}
