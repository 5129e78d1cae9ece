// Target templates: "public.ecr.aws/acme/{name}" derives a target repository from the source, so a long
// list of mirrors does not have to repeat every name.

import type { Repository } from '../reference/reference.js';

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

/**
 * Replace {name} (last path component of the source: "teleport"), {path} (the whole source path:
 * "gravitational/teleport", "library/ubuntu" on Docker Hub) and {registry} ("quay.io").
 * Unknown placeholders are left as written; the schema reports them before anything is expanded.
 */
export function expandTarget(template: string, source: Repository): string {
  const values: Record<Placeholder, string> = {
    name: source.path.slice(source.path.lastIndexOf('/') + 1),
    path: source.path,
    registry: source.registry,
  };
  return template.replace(PLACEHOLDER, (whole, name: string) => (isPlaceholder(name) ? values[name] : whole));
}

/** The placeholders of `template` that expandTarget does not know. */
export function unknownPlaceholders(template: string): string[] {
  return placeholdersIn(template).filter((name) => !isPlaceholder(name));
}
