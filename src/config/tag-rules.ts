// Tag rules given on the command line (`tags --filter`), in the config's own JSON form and checked by the
// config's schema, so that a filter tried out with `tags` behaves exactly as it will in a mirror.
// Kept apart from load.ts so that `tags` does not load cosmiconfig.

import { UsageError } from '../errors.js';
import { configErrorMap, formatPath, issuesFromZod } from './issues.js';
import { JsonSyntaxError, parseJsonText } from './json-text.js';
import { tagRulesSchema } from './schema.js';
import type { TagRules } from './tags.js';

/**
 * Tag rules given outside a config file (`tags --filter`), as JSON text in the config's own form, checked
 * by the same schema. `what` names where they came from in messages ("--filter").
 */
export function parseTagRules(text: string, what: string): TagRules {
  let input: unknown;
  try {
    input = parseJsonText(text);
  } catch (err) {
    if (!(err instanceof JsonSyntaxError)) throw err;
    throw new UsageError(
      `${what}: invalid JSON at column ${err.column}: ${err.reason}; write tag rules as in a config, e.g. '{"semver": ">=1.2", "latest": 5}' or '["1.2.3"]'`,
    );
  }
  const result = tagRulesSchema.safeParse(input, { error: configErrorMap });
  if (result.success) return result.data;
  let issues = issuesFromZod(tagRulesSchema, result.error);
  // An object of unknown keys only "selects nothing" because its keys are unknown: say that alone.
  if (issues.some((i) => i.message.startsWith('unknown key')))
    issues = issues.filter((i) => !i.message.startsWith('selects nothing'));
  throw new UsageError(
    `${what} is invalid: ${issues.map((i) => (i.path.length ? `${formatPath(i.path)}: ${i.message}` : i.message)).join('; ')}`,
  );
}
