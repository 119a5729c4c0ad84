import { describe, expect, it } from 'vitest';
import { resolveConfig, validateConfigFile } from '../src/config.js';
import { ServerError } from '../src/errors.js';

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ServerError && err.code === 'CONFIG_INVALID') return err.message;
    throw err;
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('config: storage engine', () => {
  it('defaults to sqlite and keeps the older `kind` spelling', () => {
    expect(resolveConfig({}).storage).toEqual({ engine: 'sqlite', synchronous: 'full' });
    expect(resolveConfig({ storage: { kind: 'sqlite', file: 'x.db' } }).storage).toEqual({
      engine: 'sqlite',
      synchronous: 'full',
      file: 'x.db',
    });
  });

  it('selects postgres with a url or host and a pool size', () => {
    const c = resolveConfig({
      storage: { engine: 'postgres', postgres: { url: 'postgres://u@db/relay', poolSize: 20 } },
    });
    expect(c.storage).toEqual({
      engine: 'postgres',
      postgres: { url: 'postgres://u@db/relay', poolSize: 20 },
    });
    const h = resolveConfig({
      storage: {
        engine: 'postgres',
        postgres: { host: 'db', port: 5433, database: 'relay', user: 'u', passwordFile: 'pw' },
      },
    });
    expect(h.storage.engine).toBe('postgres');
  });

  it('names the field of every storage mistake', () => {
    const cases: [unknown, string][] = [
      [{ storage: { engine: 'mysql' } }, 'storage.engine'],
      [{ storage: { engine: 'postgres', postgres: { url: 'http://db' } } }, 'storage.postgres.url'],
      [
        { storage: { engine: 'postgres', postgres: { host: 'db', port: 0 } } },
        'storage.postgres.port',
      ],
      [
        { storage: { engine: 'postgres', postgres: { host: 'db', poolSize: 0 } } },
        'storage.postgres.poolSize',
      ],
      [
        { storage: { engine: 'postgres', postgres: { host: 'db', pasword: 'x' } } },
        'storage.postgres',
      ],
    ];
    for (const [value, field] of cases) {
      expect(messageOf(() => validateConfigFile(value))).toContain(`"${field}"`);
    }
    const resolved: [Parameters<typeof resolveConfig>[0], string][] = [
      [{ storage: { engine: 'postgres' } }, 'storage.postgres'],
      [
        { storage: { engine: 'postgres', postgres: { database: 'relay' } } },
        'storage.postgres.url',
      ],
      [
        {
          storage: {
            engine: 'postgres',
            postgres: { host: 'db', password: 'a', passwordFile: 'b' },
          },
        },
        'storage.postgres.passwordFile',
      ],
      [
        { storage: { engine: 'postgres', kind: 'sqlite', postgres: { host: 'db' } } },
        'storage.kind',
      ],
      [{ storage: { engine: 'postgres', file: 'x.db', postgres: { host: 'db' } } }, 'storage.file'],
      [{ storage: { postgres: { host: 'db' } } }, 'storage.postgres'],
    ];
    for (const [value, field] of resolved) {
      expect(messageOf(() => resolveConfig(value))).toContain(`"${field}"`);
    }
  });
});
