import { describe, expect, it } from 'vitest';
import { OPENAPI_MAX_BYTES, validateOpenApi } from './openapi';

const good = {
  openapi: '3.1.0',
  info: { title: 'Weather', version: '1.0.0' },
  paths: {
    '/forecast/{city}': {
      get: { parameters: [{ name: 'city', in: 'path', required: true }], responses: { '200': { description: 'ok' } } },
    },
  },
};

describe('OpenAPI structural validation', () => {
  it('accepts a 3.1 document as object or JSON text and counts operations', () => {
    const a = validateOpenApi(good);
    expect(a).toMatchObject({ ok: true, title: 'Weather', operations: 1 });
    expect(validateOpenApi(JSON.stringify(good)).ok).toBe(true);
  });

  it('accepts 3.0 with responses on each operation', () => {
    expect(validateOpenApi({ ...good, openapi: '3.0.3' }).ok).toBe(true);
    const missing = validateOpenApi({ openapi: '3.0.3', info: good.info, paths: { '/a': { get: {} } } });
    expect(missing).toEqual({ ok: false, reason: expect.stringContaining('responses') });
  });

  it.each([
    [{ swagger: '2.0', info: good.info, paths: {} }, 'Swagger 2.0'],
    [{ openapi: '4.0.0', info: good.info, paths: {} }, '3.0.x or 3.1.x'],
    [{ openapi: 3.1, info: good.info, paths: {} }, '3.0.x or 3.1.x'],
    [{ openapi: '3.1.0', paths: {} }, 'info'],
    [{ openapi: '3.1.0', info: { title: '', version: '1' }, paths: {} }, 'info.title'],
    [{ openapi: '3.1.0', info: { title: 'x' }, paths: {} }, 'info.version'],
    [{ openapi: '3.0.0', info: good.info }, 'paths'],
    [{ openapi: '3.1.0', info: good.info, paths: [] }, 'paths'],
    [{ openapi: '3.1.0', info: good.info, paths: { nope: {} } }, 'must start with /'],
    [{ openapi: '3.1.0', info: good.info, paths: { '/a': { get: { parameters: [{ name: 'x', in: 'body' }] } } } }, 'parameter'],
    [[1, 2], 'JSON object'],
    ['<html>not json</html>', 'not valid JSON'],
  ])('refuses an invalid document (%#)', (doc, reason) => {
    const res = validateOpenApi(doc);
    expect(res.ok).toBe(false);
    expect(res.ok ? '' : res.reason).toContain(reason);
  });

  it('refuses documents over the size cap and absurd nesting without a stack overflow', () => {
    expect(validateOpenApi('x'.repeat(OPENAPI_MAX_BYTES + 1))).toEqual({ ok: false, reason: expect.stringContaining('larger') });
    let deep: Record<string, unknown> = {};
    const root = { openapi: '3.1.0', info: good.info, paths: {}, components: deep };
    for (let i = 0; i < 5000; i++) {
      const next = {};
      deep.x = next;
      deep = next;
    }
    expect(validateOpenApi(root)).toEqual({ ok: false, reason: expect.stringContaining('deeper') });
  });
});
