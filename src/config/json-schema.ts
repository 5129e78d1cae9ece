// The published JSON Schema (mirror.schema.json) for editors: generated from the zod schema, describing
// the config as written (io: "input": chunkSize may be "8MiB", tags may be a list). Checks that need
// code (regular expressions compile, semver ranges parse, templates expand) exist only in regmirror.

import { z } from 'zod';
import { configSchema } from './schema.js';

export const SCHEMA_FILE = 'mirror.schema.json';

export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', target: 'draft-2020-12' });
}

/** The file's exact text, so that a test can compare it with the committed one. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
