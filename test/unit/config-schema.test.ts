import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { configJsonSchema, configJsonSchemaText, SCHEMA_FILE } from '../../src/config/json-schema.js';

const REPO_ROOT = join(import.meta.dirname, '..', '..');

interface JsonSchemaNode {
  description?: string;
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  additionalProperties?: JsonSchemaNode | boolean;
}

describe('mirror.schema.json', () => {
  it('is what scripts/gen-schema.ts generates from the zod schema (run `npm run schema` after a change)', async () => {
    const committed = await readFile(join(REPO_ROOT, SCHEMA_FILE), 'utf8');
    assert.equal(committed, configJsonSchemaText());
  });

  it('describes every field, so editors can show help', () => {
    const schema = configJsonSchema() as JsonSchemaNode;
    const undocumented: string[] = [];
    const visit = (node: JsonSchemaNode, path: string) => {
      for (const [key, child] of Object.entries(node.properties ?? {})) {
        if (!child.description) undocumented.push(`${path}.${key}`);
        visit(child, `${path}.${key}`);
      }
      if (node.items) visit(node.items, `${path}[]`);
      if (typeof node.additionalProperties === 'object') visit(node.additionalProperties, `${path}.*`);
    };
    visit(schema, '$');
    assert.deepEqual(undocumented, []);
  });

  it('rejects unknown keys in editors too', () => {
    const schema = configJsonSchema() as JsonSchemaNode;
    assert.equal(schema.additionalProperties, false);
    assert.equal(schema.properties?.mirrors?.items?.additionalProperties, false);
  });
});
