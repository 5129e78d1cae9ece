// How configuration problems are found in zod's answer and shown to a user: one line per problem,
// "<json path>: <what is wrong and what to write instead>", under a header naming the file.

import { relative } from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';

export interface ConfigIssue {
  /** JSON path inside the config, e.g. ["mirrors", 2, "tags", "semver"]. */
  path: readonly PropertyKey[];
  message: string;
}

/** Enough to fix a config in one go, without burying the first problem under a hundred similar ones. */
export const MAX_ISSUES_SHOWN = 10;

/** A config that was read but does not validate. `issues` are all of them, the message shows the first few. */
export class ConfigValidationError extends ConfigError {
  readonly file: string;
  readonly issues: readonly ConfigIssue[];
  constructor(file: string, issues: readonly ConfigIssue[]) {
    const shown = issues.slice(0, MAX_ISSUES_SHOWN).map((issue) => `  ${formatIssue(issue)}`);
    if (issues.length > shown.length) shown.push(`  ... and ${issues.length - shown.length} more`);
    const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
    super(`config ${file} is invalid (${count}):\n${shown.join('\n')}`);
    this.file = file;
    this.issues = issues;
  }
}

/** The file as the user should see it: relative to the working directory when inside it. */
export function displayPath(filepath: string, cwd: string): string {
  const rel = relative(cwd, filepath);
  return rel !== '' && !rel.startsWith('..') && !rel.startsWith('/') ? rel : filepath;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** ["mirrors", 2, "tags", "semver"] → mirrors[2].tags.semver; registries["quay.io"].tls. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && IDENTIFIER.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out === '' ? '(top level)' : out;
}

export function formatIssue(issue: ConfigIssue): string {
  return `${formatPath(issue.path)}: ${issue.message}`;
}

/** A value as a message shows it: "ecr" (quoted), 42, true, a list, an object. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  // Unquoted, so 8 and "8" read differently.
  return String(value);
}

// Marks zod's generic unknown-key issue, which issuesFromZod splits into one line per key with a suggestion.
const UNKNOWN_KEY = 'unknown key';

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  record: 'an object',
};

/** The candidate closest to `word` (a typo, another case), if one is close enough to be meant. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // A third of the word: "platfroms" → platforms, "tag" → tags, but "foo" is not "name".
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * Messages for zod's built-in checks, in the config's terms. Fields with a better message of their own
 * (sources, targets, tag rules...) set it on the schema, which takes precedence over this map.
 */
export const configErrorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'unrecognized_keys':
      return UNKNOWN_KEY;
    case 'invalid_type': {
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      if (issue.input === undefined) return `required: expected ${expected}`;
      return `expected ${expected}, got ${describeValue(issue.input)}`;
    }
    case 'too_small':
      if (issue.origin === 'array') return `must not be empty (at least ${issue.minimum})`;
      if (issue.origin === 'string') return 'must not be empty';
      return `must be at least ${issue.minimum}, got ${describeValue(issue.input)}`;
    case 'too_big':
      return `must be at most ${issue.maximum}, got ${describeValue(issue.input)}`;
    case 'invalid_value': {
      const options = issue.values.map((v) => JSON.stringify(v));
      const hint =
        typeof issue.input === 'string'
          ? closest(
              issue.input,
              issue.values.filter((v): v is string => typeof v === 'string'),
            )
          : undefined;
      return `expected ${options.join(' or ')}, got ${describeValue(issue.input)}${hint ? ` (did you mean "${hint}"?)` : ''}`;
    }
    case 'invalid_format':
      return `${describeValue(issue.input)} does not have the expected form${issue.pattern ? ` (${issue.pattern})` : ''}`;
    default:
      return undefined;
  }
};

/** The keys an object in `schema` at `path` accepts (every object a union there could be). */
function knownKeysAt(schema: z.core.$ZodType, path: readonly PropertyKey[]): string[] {
  const def = schema._zod.def;
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'readonly':
      return knownKeysAt((def as z.core.$ZodOptionalDef).innerType, path);
    case 'pipe':
      return knownKeysAt((def as z.core.$ZodPipeDef).in, path);
    case 'union':
      return [...new Set((def as z.core.$ZodUnionDef).options.flatMap((o) => knownKeysAt(o, path)))];
    case 'object': {
      const shape = (def as z.core.$ZodObjectDef).shape;
      if (path.length === 0) return Object.keys(shape);
      const child = typeof path[0] === 'string' ? shape[path[0]] : undefined;
      return child ? knownKeysAt(child, path.slice(1)) : [];
    }
    case 'array':
      return path.length > 0 ? knownKeysAt((def as z.core.$ZodArrayDef).element, path.slice(1)) : [];
    case 'record':
      return path.length > 0 ? knownKeysAt((def as z.core.$ZodRecordDef).valueType, path.slice(1)) : [];
    default:
      return [];
  }
}

/** Whether a union branch failed on the value's very shape (a string where an object was wanted...). */
function failedOnShape(issues: readonly z.core.$ZodIssue[]): boolean {
  return issues.some(
    (issue) => issue.path.length === 0 && (issue.code === 'invalid_type' || issue.code === 'invalid_value'),
  );
}

/**
 * zod's issues as config issues. A union that failed is explained by the one branch whose shape the
 * value has (an object given for `tags` is checked as the object form), else by the union's own message.
 */
export function issuesFromZod(schema: z.core.$ZodType, error: z.core.$ZodError): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const visit = (issue: z.core.$ZodIssue, prefix: readonly PropertyKey[]): void => {
    const path = [...prefix, ...issue.path];
    switch (issue.code) {
      case 'unrecognized_keys': {
        const known = knownKeysAt(schema, path);
        for (const key of issue.keys) {
          const suggestion = closest(key, known);
          const help = suggestion
            ? ` (did you mean "${suggestion}"?)`
            : known.length > 0
              ? `; expected one of: ${known.join(', ')}`
              : '';
          // A schema may explain an unknown key itself (e.g. an unknown credentials source).
          const message = issue.message === UNKNOWN_KEY ? `unknown key${help}` : issue.message;
          out.push({ path: [...path, key], message });
        }
        return;
      }
      case 'invalid_union': {
        const candidates = issue.errors.filter((branch) => !failedOnShape(branch));
        if (candidates.length === 1) for (const inner of candidates[0]!) visit(inner, path);
        else out.push({ path, message: issue.message });
        return;
      }
      case 'invalid_key':
        for (const inner of issue.issues) out.push({ path, message: inner.message });
        return;
      default:
        out.push({ path, message: issue.message });
    }
  };
  for (const issue of error.issues) visit(issue, []);
  return out;
}
