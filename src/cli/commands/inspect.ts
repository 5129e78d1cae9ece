// regmirror inspect REF: the manifest tree: digests, media types, platforms, sizes.

import { loadGraph, totalSize } from '../../copy/graph.js';
import { ReferrerRun } from '../../copy/referrer-run.js';
import { discoverAtSource, type FoundReferrer } from '../../copy/referrers.js';
import type { RegistryStore } from '../../copy/store.js';
import { NotFoundError } from '../../errors.js';
import { childrenOf, type Descriptor, isAttestation, type Manifest } from '../../oci/manifest.js';
import { formatPlatform } from '../../oci/platform.js';
import { describeSelector, formatReference, type Reference, withDigest } from '../../reference/reference.js';
import type { RegistryClient } from '../../registry/client.js';
import { formatBytes, plural } from '../format.js';
import type { Output } from '../output.js';
import { parseRef } from '../parse.js';
import { openStores } from '../stores.js';
import { resolveLayoutSource } from './copy.js';

interface Node {
  digest: string;
  mediaType: string;
  size: number;
  kind: 'index' | 'image';
  artifactType?: string;
  platform?: string;
  attestationFor?: string;
  subject?: string;
  config?: { digest: string; mediaType: string; size: number };
  layers?: { digest: string; mediaType: string; size: number }[];
  /** Bytes of config and layers. */
  contentSize?: number;
  manifests?: Node[];
  /** With --referrers: what refers to this manifest. */
  referrers?: ReferrerNode[];
}

interface ReferrerNode {
  digest: string;
  artifactType?: string;
  /** The cosign tag it is found under (absent for an OCI 1.1 referrer). */
  tag?: string;
  referrers?: ReferrerNode[];
}

/** The referrers of `subject`, each with its own below it. */
function referrerTree(subject: string, found: FoundReferrer[], depth = 0): ReferrerNode[] {
  if (depth > 8) return [];
  return found
    .filter((f) => f.subject === subject)
    .map((f) => {
      const below = referrerTree(f.digest, found, depth + 1);
      return {
        digest: f.digest,
        ...(f.artifactType !== undefined ? { artifactType: f.artifactType } : {}),
        ...(f.tag !== undefined ? { tag: f.tag } : {}),
        ...(below.length > 0 ? { referrers: below } : {}),
      };
    });
}

function attachReferrers(node: Node, found: FoundReferrer[]): void {
  const mine = referrerTree(node.digest, found);
  if (mine.length > 0) node.referrers = mine;
  for (const child of node.manifests ?? []) attachReferrers(child, found);
}

function renderReferrers(referrers: ReferrerNode[] | undefined, indent: string, out: string[]): void {
  for (const r of referrers ?? []) {
    const what = r.tag !== undefined ? `cosign tag ${r.tag}` : (r.artifactType ?? 'referrer');
    out.push(`${indent}← ${what}  ${r.digest}`);
    renderReferrers(r.referrers, `${indent}    `, out);
  }
}

function toNode(m: Manifest, all: Map<string, Manifest>, desc?: Descriptor): Node {
  const node: Node = { digest: m.digest, mediaType: m.mediaType, size: m.bytes.byteLength, kind: m.kind };
  if (m.artifactType) node.artifactType = m.artifactType;
  if (m.subject) node.subject = m.subject.digest;
  if (desc?.platform) node.platform = formatPlatform(desc.platform);
  const ref = desc?.annotations?.['vnd.docker.reference.digest'];
  if (ref && desc?.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest')
    node.attestationFor = ref;
  if (m.kind === 'image') {
    node.config = { digest: m.config.digest, mediaType: m.config.mediaType, size: m.config.size };
    node.layers = m.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size }));
    node.contentSize = totalSize([m.config, ...m.layers]);
  } else {
    node.manifests = childrenOf(m).map((d) => toNode(all.get(d.digest)!, all, d));
  }
  return node;
}

function render(node: Node, indent: string, out: string[]): void {
  if (node.kind === 'index') {
    out.push(
      `${indent}${node.digest}  ${node.mediaType}  (${plural(node.manifests!.length, 'child manifest')})`,
    );
    renderReferrers(node.referrers, indent, out);
    const platformOf = new Map(node.manifests!.map((c) => [c.digest, c.platform]));
    for (const child of node.manifests!) {
      const subject = child.attestationFor;
      const label = subject
        ? `attestation of ${platformOf.get(subject) ?? subject.slice(0, 19)}`
        : (child.platform ?? child.artifactType ?? 'manifest');
      out.push(`${indent}- ${label}`);
      render(child, `${indent}    `, out);
    }
    return;
  }
  out.push(
    `${indent}${node.digest}  ${node.mediaType}${node.artifactType ? `  artifactType ${node.artifactType}` : ''}`,
  );
  if (node.subject) out.push(`${indent}subject ${node.subject}`);
  renderReferrers(node.referrers, indent, out);
  out.push(
    `${indent}config ${node.config!.digest}  ${node.config!.mediaType}  ${formatBytes(node.config!.size)}`,
  );
  for (const l of node.layers!)
    out.push(`${indent}layer  ${l.digest}  ${l.mediaType}  ${formatBytes(l.size)}`);
  out.push(`${indent}total  ${formatBytes(node.contentSize!)} in ${plural(node.layers!.length, 'layer')}`);
}

export async function runInspect(
  refText: string,
  flags: { json?: boolean; debug?: boolean; referrers?: boolean },
  client: RegistryClient,
  out: Output,
): Promise<number> {
  const { store, layouts } = openStores(client, out, flags.debug);
  try {
    return await inspect(
      await resolveLayoutSource(parseRef(refText, 'reference'), layouts),
      flags,
      store,
      out,
    );
  } finally {
    await layouts.close(false);
  }
}

async function inspect(
  ref: Reference,
  flags: { json?: boolean; referrers?: boolean },
  store: RegistryStore,
  out: Output,
): Promise<number> {
  const head = await store.manifestHead(ref);
  if (!head) {
    throw new NotFoundError(`${describeSelector(ref)} not found`, {
      context: { registry: ref.registry, repository: ref.path, step: 'manifest HEAD' },
    });
  }
  const graph = await loadGraph(store, withDigest(ref, head.digest));
  const tree = toNode(graph.root, graph.manifests);
  let found: FoundReferrer[] = [];
  if (flags.referrers) {
    const discovered = await discoverAtSource(
      store,
      new ReferrerRun(),
      ref,
      head.digest,
      async () => graph.order.map((m) => m.digest),
      { cosignTags: true },
    );
    found = discovered.found;
    attachReferrers(tree, found);
  }
  const through =
    store.referrersApi?.(ref.registry) === true ? 'the referrers API' : 'fallback tags (sha256-<hex>)';
  if (flags.json) {
    out.result(
      JSON.stringify(
        {
          reference: formatReference(ref),
          ...tree,
          ...(flags.referrers
            ? { referrersFoundThrough: store.referrersApi?.(ref.registry) === true ? 'api' : 'tag-schema' }
            : {}),
        },
        null,
        2,
      ),
    );
  } else {
    const lines = [formatReference(ref)];
    render(tree, '  ', lines);
    const platforms =
      graph.root.kind === 'index' ? graph.root.manifests.filter((d) => !isAttestation(d)).length : 1;
    const attestations = graph.root.kind === 'index' ? graph.root.manifests.filter(isAttestation).length : 0;
    lines.push(
      `  ${plural(platforms, 'platform')}${attestations ? `, ${plural(attestations, 'attestation')}` : ''}; ${plural(graph.order.length, 'manifest')} in all`,
    );
    if (flags.referrers) {
      lines.push(
        `  ${plural(found.length, 'referrer')} (← below what they refer to), found through ${through}`,
      );
    }
    out.result(lines.join('\n'));
  }
  return 0;
}
