// Target templates: "public.ecr.aws/acme/{name}" derives a target repository from the source, so a long
// list of mirrors does not have to repeat every name. A layout source fills them from its name prefix
// ("oci:bundle:quay.io/acme/app" as quay.io/acme/app), so an exported bundle loads back under the
// repository names it came from.

import {
  formatRepository,
  layoutRepository,
  parseRepository,
  type Repository,
} from '../reference/reference.js';

export const PLACEHOLDERS = ['name', 'path', 'registry'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

const PLACEHOLDER = /\{([^{}]*)\}/g;

/** The placeholder names used in `template`, in order of appearance (unknown ones included). */
export function placeholdersIn(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

export function isTemplate(target: string): boolean {
  return placeholdersIn(target).length > 0;
}

function isPlaceholder(name: string): name is Placeholder {
  return (PLACEHOLDERS as readonly string[]).includes(name);
}

/** A template that cannot be filled in: its source has no repository name (a layout without prefix). */
export class TemplateError extends Error {}

/**
 * The repository whose parts fill the placeholders: a registry source itself; for a layout source, its
 * name prefix read as a repository; undefined when it has none that reads as one.
 */
export function templateSource(source: Repository): Repository | undefined {
  if (!source.layout) return source;
  if (source.path === '') return undefined;
  try {
    return parseRepository(source.path);
  } catch {
    return undefined;
  }
}

/**
 * Replace {name} (last path component of the source: "teleport"), {path} (the whole source path:
 * "gravitational/teleport", "library/ubuntu" on Docker Hub) and {registry} ("quay.io").
 * Unknown placeholders are left as written; the schema reports them before anything is expanded.
 */
export function expandTarget(template: string, source: Repository): string {
  if (!isTemplate(template)) return template;
  const from = templateSource(source);
  if (!from) {
    throw new TemplateError(
      `"${template}" needs a repository name from the source, and ${formatRepository(source)} has none; ` +
        `name the images' prefix in the source (e.g. "${source.registry}:quay.io/acme/app") or write the target in full`,
    );
  }
  const values: Record<Placeholder, string> = {
    name: from.path.slice(from.path.lastIndexOf('/') + 1),
    path: from.path,
    registry: from.registry,
  };
  return template.replace(PLACEHOLDER, (whole, name: string) => (isPlaceholder(name) ? values[name] : whole));
}

/**
 * The name prefix a mirror into a layout gives its images when the target names none: the source
 * repository ("quay.io/acme/app", so the image is "quay.io/acme/app:1.4.2"), or a layout source's own
 * prefix. One layout can so hold a whole config's selection, and skopeo finds each image as
 * oci:PATH:quay.io/acme/app:1.4.2.
 */
export function defaultLayoutPrefix(source: Repository): string {
  return source.layout ? source.path : formatRepository(source);
}

/** A target as the mirror uses it: the template expanded, a layout without prefix given the default one. */
export function resolveTarget(template: string, source: Repository): Repository {
  const target = parseRepository(expandTarget(template, source));
  if (target.layout && target.path === '')
    return layoutRepository(target.layout, defaultLayoutPrefix(source));
  return target;
}

/** The placeholders of `template` that expandTarget does not know. */
export function unknownPlaceholders(template: string): string[] {
  return placeholdersIn(template).filter((name) => !isPlaceholder(name));
}
