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

describe('config: bus engine', () => {
  it('defaults to the local bus and resolves a redis section with its key prefix', () => {
    expect(resolveConfig({}).bus).toEqual({ engine: 'local' });
    expect(
      resolveConfig({ bus: { engine: 'redis', redis: { url: 'redis://cache:6380' } } }).bus,
    ).toEqual({ engine: 'redis', redis: { url: 'redis://cache:6380', keyPrefix: 'parley:' } });
    expect(
      resolveConfig({
        bus: {
          engine: 'redis',
          redis: { host: 'cache', port: 6390, passwordFile: 'redis.pw', keyPrefix: 'org1:' },
        },
      }).bus,
    ).toEqual({
      engine: 'redis',
      redis: { host: 'cache', port: 6390, passwordFile: 'redis.pw', keyPrefix: 'org1:' },
    });
  });

  it('names the field of every bus mistake', () => {
    const cases: [unknown, string][] = [
      [{ bus: { engine: 'nats' } }, 'bus.engine'],
      [{ bus: { engine: 'redis', redis: { url: 'http://cache' } } }, 'bus.redis.url'],
      [{ bus: { engine: 'redis', redis: { host: 'cache', port: 70000 } } }, 'bus.redis.port'],
      [{ bus: { engine: 'redis', redis: { host: 'c', keyPrefix: 'a b' } } }, 'bus.redis.keyPrefix'],
      [{ bus: { engine: 'redis', redis: { host: 'c', pasword: 'x' } } }, 'bus.redis'],
      [{ bus: { engin: 'redis' } }, 'bus'],
    ];
    for (const [value, field] of cases) {
      expect(messageOf(() => validateConfigFile(value))).toContain(`"${field}"`);
    }
    const resolved: [Parameters<typeof resolveConfig>[0], string][] = [
      [{ bus: { engine: 'redis' } }, 'bus.redis'],
      [{ bus: { engine: 'redis', redis: { port: 6379 } } }, 'bus.redis.url'],
      [{ bus: { redis: { host: 'cache' } } }, 'bus.redis'],
    ];
    for (const [value, field] of resolved) {
      expect(messageOf(() => resolveConfig(value))).toContain(`"${field}"`);
    }
  });
});
