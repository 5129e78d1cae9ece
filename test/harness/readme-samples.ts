// The README's sample outputs, produced by real runs: real registries on loopback ports, a real
// multi-arch image, the built CLI. scripts/readme-samples.ts writes them into README.md;
// test/integration/readme-samples.test.ts runs the same scenario and compares (modulo digests, ports,
// times and the order in which parallel work finishes), so the README cannot drift from the tool.
//
// Ports are ephemeral, so each registry's host:port is shown as a fixed stand-in of the same length (the
// tables keep their alignment): the token-auth registry as 127.0.0.1:50000, the Basic-auth one as
// 127.0.0.1:50001, the open one as 127.0.0.1:50002.

import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT, startWorld, type World } from './fixture.js';
import { seedImage } from './seed.js';

export interface Sample {
  /** The command as shown: `regmirror ...` with stand-in hosts. */
  command: string;
  /** What it printed, stderr and stdout as a terminal shows them, with stand-in hosts. */
  output: string;
}

/** Every sample the README shows, by the name of its marker (`<!-- sample: NAME -->`). */
export type Samples = Map<string, Sample>;

export const SAMPLE_COLUMNS = '100';

const CLI = join(REPO_ROOT, 'bin', 'regmirror.js');

/** Real output with the world's hosts (and temporary paths) replaced by stand-ins. */
function standIns(world: World): (text: string) => string {
  const hosts: [string, string][] = [
    [world.source.host, '127.0.0.1:50000'],
    [world.basic.host, '127.0.0.1:50001'],
    [world.open.host, '127.0.0.1:50002'],
    [new URL(world.tokenServer.realm).host, '127.0.0.1:50100'],
  ];
  return (text) => {
    let out = text;
    for (const [real, shown] of hosts) out = out.split(real).join(shown);
    return out.split(world.dockerConfigDir).join('~/.docker').split(world.workDir).join('.');
  };
}

/** Run the CLI with stderr and stdout on one pipe, in the order a terminal would show them. */
function run(world: World, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', 'exec "$0" "$@" 2>&1', process.execPath, CLI, ...args], {
      cwd: world.workDir,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: world.homeDir,
        DOCKER_CONFIG: world.dockerConfigDir,
        COLUMNS: SAMPLE_COLUMNS,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      output += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
  });
}

export async function produceSamples(): Promise<Samples> {
  const world = await startWorld();
  try {
    const shown = standIns(world);
    const samples: Samples = new Map();
    const A = world.source.host;
    const B = world.basic.host;
    const C = world.open.host;
    const sample = async (name: string, args: string[], expectCode = 0): Promise<void> => {
      const { code, output } = await run(world, args);
      if (code !== expectCode) {
        throw new Error(`regmirror ${args.join(' ')} exited ${code}, expected ${expectCode}:\n${output}`);
      }
      samples.set(name, { command: shown(`regmirror ${args.join(' ')}`), output: shown(output).trimEnd() });
    };

    await seedImage(world.source.seedTarget, 'acme/app', '1.4.2', 'oci-index-with-attestations');
    await seedImage(world.source.seedTarget, 'acme/app', '1.5.0', 'oci-index-with-attestations');
    await seedImage(world.source.seedTarget, 'acme/web', '2.0.0', 'oci-index-with-attestations');

    // The release fan-out: three targets, one of them on the source's registry (mounts).
    await sample('copy', [
      'copy',
      `${A}/acme/app:1.4.2`,
      `${B}/acme/app`,
      `${C}/acme/app`,
      `${A}/mirror/acme/app`,
    ]);
    await sample('copy-again', ['copy', `${A}/acme/app:1.4.2`, `${B}/acme/app`, `${C}/acme/app`]);
    await sample('inspect', ['inspect', `${C}/acme/app:1.4.2`]);

    // A config: acme/app to two targets, acme/web's arm64 image to a repository that does not exist yet.
    // The open target holds another image under 1.5.0 already: the plan moves it.
    await seedImage(world.open.seedTarget, 'acme/app', '1.5.0', 'oci-image', { seed: 'an older build' });
    await writeFile(
      join(world.workDir, 'mirror.config.json'),
      `${JSON.stringify(
        {
          mirrors: [
            {
              source: `${A}/acme/app`,
              tags: { semver: '>=1.0.0' },
              targets: [`${C}/acme/app`, `${B}/acme/app`],
            },
            {
              source: `${A}/acme/web`,
              tags: ['2.0.0'],
              platforms: ['linux/arm64'],
              targets: [`${C}/acme/web`],
            },
          ],
        },
        null,
        2,
      )}\n`,
    );
    await sample('plan', ['plan']);
    await sample('sync', ['sync']);

    // Drift: a target tag deleted, another moved elsewhere.
    const del = await run(world, ['digest', `${C}/acme/app:1.4.2`]);
    const res = await fetch(`${world.open.url}/v2/acme/app/manifests/${del.output.trim()}`, {
      method: 'DELETE',
    });
    if (res.status !== 202) throw new Error(`deleting ${C}/acme/app:1.4.2 answered ${res.status}`);
    await seedImage(world.basic.seedTarget, 'acme/app', '1.5.0', 'oci-image', { seed: 'pushed by hand' });
    // -q: the Markdown alone, as a CI job summary gets it.
    await sample('check-markdown', ['check', '--format', 'markdown', '-q'], 1);
    await sample('check-fix', ['check', '--fix']);
    return samples;
  } finally {
    await world.stop();
  }
}

/** `<!-- sample: NAME -->` followed by a fenced block: the block's text, or undefined. */
const MARKER = /<!-- sample: ([a-z-]+) -->\n```(\w*)\n([\s\S]*?)```/g;

export function readmeSamples(readme: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of readme.matchAll(MARKER)) out.set(m[1]!, m[3]!.trimEnd());
  return out;
}

/** How a sample appears in the README: the command, then its output (Markdown as it is). */
export function sampleText(name: string, s: Sample): string {
  return name === 'check-markdown' ? s.output : `$ ${s.command}\n${s.output}`;
}

/** README.md with every marked block replaced by its sample. */
export function withSamples(readme: string, samples: Samples): string {
  return readme.replace(MARKER, (_whole, name: string, lang: string) => {
    const s = samples.get(name);
    if (!s) throw new Error(`README.md has a sample marker "${name}" that no run produces`);
    return `<!-- sample: ${name} -->\n\`\`\`${lang}\n${sampleText(name, s)}\n\`\`\``;
  });
}

/**
 * What may differ between two real runs of the same scenario: digests (content is seeded, but the
 * comparison should not hinge on it), times, request counts, column widths that follow from those, and
 * the order in which parallel images finish. Lines are compared as a sorted list.
 */
export function normalise(text: string): string[] {
  return text
    .replace(/sha256:[0-9a-f]{12,64}/g, 'sha256:<digest>')
    .replace(/\b[0-9a-f]{12}\b/g, '<hex>')
    .replace(/\b\d+(\.\d+)? (ms|s)\b/g, '<time>')
    .replace(/\b\d+ min \d+ s\b/g, '<time>')
    .replace(/\b\d+ requests?\b/g, '<n> requests')
    .split('\n')
    .map((l) => l.replace(/-{2,}/g, '--').replace(/\s+/g, ' ').trim())
    .filter(Boolean)
    .sort();
}
