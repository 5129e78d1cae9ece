// Renders engine events for people: a live ora line on a terminal (images done of total, bytes and
// rate, what is in flight), one plain line per finished image elsewhere.

import type { CopyEvent } from '../copy/events.js';
import { imageLine } from './describe.js';
import { formatBytes } from './format.js';
import type { Output } from './output.js';

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
