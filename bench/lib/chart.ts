// The page's chart, an SVG written by hand (no service, no library): per workload, the median wall time
// of each tool as a bar scaled to the slowest in that workload, and the goal as a dashed mark.

import { medianOf, type Tool, type WorkloadResult } from './workloads.js';

const GOALS: Record<string, number> = { mixed: 0.3, small: 0.15, noop: 0.1 };
const COLORS: Record<string, string> = {
  regmirror: '#2f6fdf',
  skopeo: '#8a8f98',
  curl: '#2e9e5b',
  throttled: '#d9822b',
};

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

interface Bar {
  label: string;
  color: string;
  seconds: number;
}

function barsOf(r: WorkloadResult): Bar[] {
  if (r.id === 'throttle') {
    return [
      {
        label: 'regmirror, no throttling',
        color: COLORS.regmirror!,
        seconds: medianOf(r, 'regmirror', 'baseline'),
      },
      {
        label: 'regmirror, t1 throttled',
        color: COLORS.throttled!,
        seconds: medianOf(r, 'regmirror', 'throttled'),
      },
    ];
  }
  const tools: Tool[] = ['regmirror', 'skopeo', 'curl'];
  return tools
    .map((tool) => ({
      label: tool === 'curl' ? 'curl ×3 (floor)' : tool,
      color: COLORS[tool]!,
      seconds: medianOf(r, tool),
    }))
    .filter((b) => Number.isFinite(b.seconds));
}

export function renderChart(results: WorkloadResult[]): string {
  const width = 820;
  const left = 190;
  const barMax = 520;
  const barH = 16;
  const rows: string[] = [];
  let y = 56;
  for (const r of results) {
    const bars = barsOf(r);
    if (bars.length === 0) continue;
    const slowest = Math.max(...bars.map((b) => b.seconds));
    // The workload's name on a line of its own, so long bar labels never run into it.
    rows.push(`<text x="12" y="${y + 12}" class="w">${esc(r.id)}</text>`);
    y += 20;
    const top = y;
    for (const b of bars) {
      const w = Math.max(1, (b.seconds / slowest) * barMax);
      rows.push(
        `<text x="${left - 8}" y="${y + 12}" class="l" text-anchor="end">${esc(b.label)}</text>`,
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${b.color}" rx="2"/>`,
        `<text x="${(left + w + 6).toFixed(1)}" y="${y + 12}" class="v">${b.seconds.toFixed(b.seconds >= 100 ? 0 : 2)} s</text>`,
      );
      y += barH + 4;
    }
    // The goal: a share of skopeo's time, or for the large layer 1.5× the curl floor.
    const goal = GOALS[r.id];
    const skopeo = medianOf(r, 'skopeo');
    const curl = medianOf(r, 'curl');
    const mark =
      goal !== undefined && Number.isFinite(skopeo)
        ? { at: goal * skopeo, text: `goal ${goal}×` }
        : r.id === 'huge' && Number.isFinite(curl)
          ? { at: 1.5 * curl, text: 'goal 1.5× curl' }
          : undefined;
    if (mark) {
      const x = left + (Math.min(mark.at, slowest) / slowest) * barMax;
      rows.push(
        `<line x1="${x.toFixed(1)}" y1="${top - 3}" x2="${x.toFixed(1)}" y2="${y - 1}" stroke="#c0392b" stroke-width="2" stroke-dasharray="4 3"/>`,
        `<text x="${(x + 3).toFixed(1)}" y="${top - 5}" class="g">${esc(mark.text)}</text>`,
      );
    }
    y += 10;
  }
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    '<style>.w{font-size:13px;font-weight:bold;fill:#222}.l{font-size:11px;fill:#333}.v{font-size:11px;fill:#222}.g{font-size:10px;fill:#c0392b}.t{font-size:14px;font-weight:bold;fill:#111}.s{font-size:11px;fill:#555}</style>',
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    '<text x="12" y="22" class="t">regmirror vs skopeo: median wall time per workload (shorter is better)</text>',
    '<text x="12" y="40" class="s">Scaled to the slowest tool of each workload. Dashed: the issue-14 goal (share of skopeo’s time; large layer: 1.5× curl).</text>',
    ...rows,
    '</svg>',
    '',
  ].join('\n');
}
