// regmirror inspect REF: the manifest tree (digests, media types, platforms, sizes), the exact manifest
// bytes (--raw) or the image's config (--config); and regmirror digest REF.

import { loadGraph, totalSize } from '../../copy/graph.js';
import { ReferrerRun } from '../../copy/referrer-run.js';
import { discoverAtSource, type FoundReferrer } from '../../copy/referrers.js';
import type { RegistryStore } from '../../copy/store.js';
import { DigestMismatchError, NotFoundError, UsageError } from '../../errors.js';
import { algorithmOf, digestOf } from '../../oci/digest.js';
import { childrenOf, type Descriptor, isAttestation, type Manifest } from '../../oci/manifest.js';
import { formatPlatform, type Platform, platformMatches } from '../../oci/platform.js';
import { describeSelector, formatReference, type Reference, withDigest } from '../../reference/reference.js';
import type { RegistryClient } from '../../registry/client.js';
import { readAll } from '../../registry/transport.js';
import { formatBytes, plural } from '../format.js';
import type { Output } from '../output.js';
import { parsePlatforms, parseRef } from '../parse.js';
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

export interface InspectFlags {
  json?: boolean;
  raw?: boolean;
  config?: boolean;
  platform?: string;
  debug?: boolean;
  /** Also show what refers to each manifest (signatures, SBOMs, attestations, cosign tags). */
  referrers?: boolean;
}

/** Config blobs are small JSON documents; anything far larger is not one. */
const CONFIG_READ_LIMIT = 4 * 1024 * 1024;

/** The manifest a reference names: HEAD first, so that a missing tag is a clear "not found". */
async function resolveRoot(store: RegistryStore, ref: Reference): Promise<Manifest> {
  const head = await store.manifestHead(ref);
  if (!head) {
    throw new NotFoundError(`${describeSelector(ref)} not found`, {
      context: { registry: ref.registry, repository: ref.path, step: 'manifest HEAD' },
    });
  }
  return store.manifestGet(withDigest(ref, head.digest));
}

/**
 * The image manifest of one platform of an index: the one --platform names, or the only platform
 * there is. An image manifest is its own answer (when it is of that platform, or none was asked).
 */
async function platformManifest(
  store: RegistryStore,
  ref: Reference,
  root: Manifest,
  wanted: Platform | undefined,
  why: string,
): Promise<Manifest> {
  if (root.kind === 'image') return root;
  const images = root.manifests.filter((d) => !isAttestation(d));
  const available = images.map((d) => formatPlatform(d.platform)).join(', ');
  const chosen = wanted
    ? images.find((d) => platformMatches(d.platform, wanted))
    : images.length === 1
      ? images[0]
      : undefined;
  if (!chosen) {
    throw new UsageError(
      wanted
        ? `${formatReference(ref)} has no ${formatPlatform(wanted)} image (platforms: ${available})`
        : `${formatReference(ref)} is an index of ${images.length} platforms (${available}); ${why} needs --platform OS/ARCH`,
    );
  }
  return store.manifestGet(withDigest(ref, chosen.digest));
}

/** Open the stores (registries and layouts), resolve the reference, run `fn`, close the layouts. */
async function withSource<T>(
  refText: string,
  flags: { debug?: boolean },
  client: RegistryClient,
  out: Output,
  fn: (ref: Reference, store: RegistryStore) => Promise<T>,
): Promise<T> {
  const { store, layouts } = openStores(client, out, flags.debug);
  try {
    const ref = await resolveLayoutSource(
      parseRef(refText, 'reference', 'latest', (l) => out.info(l)),
      layouts,
    );
    return await fn(ref, store);
  } finally {
    await layouts.close(false);
  }
}

export async function runInspect(
  refText: string,
  flags: InspectFlags,
  client: RegistryClient,
  out: Output,
): Promise<number> {
  const given = [flags.json && '--json', flags.raw && '--raw'].filter(Boolean);
  if (given.length > 1) throw new UsageError(`${given.join(' and ')} ask for two outputs; give one`);
  const wanted = flags.platform !== undefined ? parsePlatforms([flags.platform])[0] : undefined;
  return withSource(refText, flags, client, out, (ref, store) => inspect(ref, flags, wanted, store, out));
}

async function inspect(
  ref: Reference,
  flags: InspectFlags,
  wanted: Platform | undefined,
  store: RegistryStore,
  out: Output,
): Promise<number> {
  const root = await resolveRoot(store, ref);
  if (flags.config) {
    const image = await platformManifest(store, ref, root, wanted, '--config');
    if (image.kind !== 'image')
      throw new UsageError(`${formatReference(ref)}: no image manifest to read a config from`);
    const bytes = await readBlob(store, ref, image.config.digest, image.config.size);
    if (flags.raw) out.resultBytes(bytes);
    else {
      let text = Buffer.from(bytes).toString('utf8');
      try {
        text = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        // Not JSON (an artifact's config can be anything): shown as it is.
      }
      out.result(text);
    }
    return 0;
  }

  const manifest = wanted ? await platformManifest(store, ref, root, wanted, '--platform') : root;
  if (flags.raw) {
    // Byte for byte, no newline added: `| sha256sum` must give the digest.
    out.resultBytes(manifest.bytes);
    return 0;
  }
  const shown = manifest === root ? ref : withDigest(ref, manifest.digest);
  const graph = await loadGraph(store, withDigest(shown, manifest.digest), manifest);
  const tree = toNode(graph.root, graph.manifests);
  let found: FoundReferrer[] = [];
  if (flags.referrers) {
    const discovered = await discoverAtSource(
      store,
      new ReferrerRun(),
      shown,
      manifest.digest,
      async () => graph.order.map((m) => m.digest),
      { cosignTags: true },
    );
    found = discovered.found;
    attachReferrers(tree, found);
  }
  const api = store.referrersApi?.(ref.registry) === true;
  if (flags.json) {
    out.result(
      JSON.stringify(
        {
          reference: formatReference(shown),
          ...tree,
          ...(flags.referrers ? { referrersFoundThrough: api ? 'api' : 'tag-schema' } : {}),
        },
        null,
        2,
      ),
    );
  } else {
    const lines = [formatReference(shown)];
    render(tree, '  ', lines);
    const platforms =
      graph.root.kind === 'index' ? graph.root.manifests.filter((d) => !isAttestation(d)).length : 1;
    const attestations = graph.root.kind === 'index' ? graph.root.manifests.filter(isAttestation).length : 0;
    lines.push(
      `  ${plural(platforms, 'platform')}${attestations ? `, ${plural(attestations, 'attestation')}` : ''}; ${plural(graph.order.length, 'manifest')} in all`,
    );
    if (flags.referrers) {
      const through = api ? 'the referrers API' : 'fallback tags (sha256-<hex>)';
      lines.push(
        `  ${plural(found.length, 'referrer')} (← below what they refer to), found through ${through}`,
      );
    }
    out.result(lines.join('\n'));
  }
  return 0;
}

/** A small blob, whole, checked against its digest and size. */
async function readBlob(store: RegistryStore, ref: Reference, digest: string, size: number): Promise<Buffer> {
  if (size > CONFIG_READ_LIMIT) {
    throw new UsageError(`the config blob ${digest} is ${formatBytes(size)}; too large to print`);
  }
  const body = await store.blobGet(ref, digest, size);
  const bytes = await readAll(body, CONFIG_READ_LIMIT);
  const actual = digestOf(bytes, algorithmOf(digest));
  if (actual !== digest || bytes.byteLength !== size) {
    throw new DigestMismatchError(digest, actual, {
      context: { side: 'source', registry: ref.registry, repository: ref.path, step: 'blob GET' },
    });
  }
  return bytes;
}

/** regmirror digest REF: the digest a reference resolves to (one HEAD), or of one platform's manifest. */
export async function runDigest(
  refText: string,
  flags: { platform?: string; debug?: boolean },
  client: RegistryClient,
  out: Output,
): Promise<number> {
  const wanted = flags.platform !== undefined ? parsePlatforms([flags.platform])[0] : undefined;
  return withSource(refText, flags, client, out, async (ref, store) => {
    if (wanted === undefined) {
      const head = await store.manifestHead(ref);
      if (!head) {
        throw new NotFoundError(`${describeSelector(ref)} not found`, {
          context: { registry: ref.registry, repository: ref.path, step: 'manifest HEAD' },
        });
      }
      out.result(head.digest);
      return 0;
    }
    const root = await resolveRoot(store, ref);
    out.result((await platformManifest(store, ref, root, wanted, '--platform')).digest);
    return 0;
  });
}
