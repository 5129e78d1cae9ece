// regmirror inspect REF: the manifest tree: digests, media types, platforms, sizes.

import { loadGraph, totalSize } from '../../copy/graph.js';
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
  out.push(
    `${indent}config ${node.config!.digest}  ${node.config!.mediaType}  ${formatBytes(node.config!.size)}`,
  );
  for (const l of node.layers!)
    out.push(`${indent}layer  ${l.digest}  ${l.mediaType}  ${formatBytes(l.size)}`);
  out.push(`${indent}total  ${formatBytes(node.contentSize!)} in ${plural(node.layers!.length, 'layer')}`);
}

export async function runInspect(
  refText: string,
  flags: { json?: boolean; debug?: boolean },
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
  flags: { json?: boolean },
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
  if (flags.json) {
    out.result(JSON.stringify({ reference: formatReference(ref), ...tree }, null, 2));
  } else {
    const lines = [formatReference(ref)];
    render(tree, '  ', lines);
    const platforms =
      graph.root.kind === 'index' ? graph.root.manifests.filter((d) => !isAttestation(d)).length : 1;
    const attestations = graph.root.kind === 'index' ? graph.root.manifests.filter(isAttestation).length : 0;
    lines.push(
      `  ${plural(platforms, 'platform')}${attestations ? `, ${plural(attestations, 'attestation')}` : ''}; ${plural(graph.order.length, 'manifest')} in all`,
    );
    out.result(lines.join('\n'));
  }
  return 0;
}
