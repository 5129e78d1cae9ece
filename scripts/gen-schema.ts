// Writes mirror.schema.json from the config schema. Run after changing src/config/schema.ts:
//   npm run schema
// test/unit/config-schema.test.ts fails while the committed file differs from a fresh generation.

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configJsonSchemaText, SCHEMA_FILE } from '../src/config/json-schema.js';

const target = fileURLToPath(new URL(`../${SCHEMA_FILE}`, import.meta.url));
writeFileSync(target, configJsonSchemaText());
console.log(`wrote ${target}`);
