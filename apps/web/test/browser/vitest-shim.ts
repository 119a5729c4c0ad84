/**
 * Just enough of vitest's API for a shared suite (describe / it / expect) to run inside
 * a browser page: cases are collected, then run one by one by `runCollected`. `expect`
 * is vitest's own matcher library on chai, so assertions mean exactly what they mean in
 * Node.
 */
import * as chai from 'chai';
import { JestAsymmetricMatchers, JestChaiExpect, JestExtend } from '@vitest/expect';
import type { expect as VitestExpect } from 'vitest';

chai.use(JestExtend);
chai.use(JestChaiExpect);
chai.use(JestAsymmetricMatchers);

export const expect = chai.expect as unknown as typeof VitestExpect;

interface Case {
  readonly name: string;
  readonly fn: () => Promise<void> | void;
}
const cases: Case[] = [];
const prefix: string[] = [];

export function describe(name: string, fn: () => void): void {
  prefix.push(name);
  try {
    fn();
  } finally {
    prefix.pop();
  }
}

export function it(name: string, fn: () => Promise<void> | void): void {
  cases.push({ name: [...prefix, name].join(' > '), fn });
}

export const test = it;
export function afterAll(): void {}
export function beforeAll(): void {}

export interface CaseResult {
  readonly name: string;
  readonly ok: boolean;
  readonly error?: string;
}

export async function runCollected(): Promise<CaseResult[]> {
  const out: CaseResult[] = [];
  for (const c of cases) {
    try {
      await c.fn();
      out.push({ name: c.name, ok: true });
    } catch (err) {
      out.push({ name: c.name, ok: false, error: String((err as Error)?.stack ?? err) });
    }
  }
  return out;
}
