import { writeFileSync } from 'node:fs';
import { bundledSchemaPath } from './cli';
import { buildJsonSchema } from './config-schema';

// `npm run schema -w @tollgate/cli`: regenerates the committed JSON Schema from the zod schemas.
writeFileSync(bundledSchemaPath(), `${JSON.stringify(buildJsonSchema(), null, 2)}\n`);
process.stdout.write(`wrote ${bundledSchemaPath()}\n`);
