import { expect } from 'vitest';
import { WireError, type WireErrorCode } from '@parley/wire';

/** Runs `fn`; returns the code of the `WireError` it throws (anything else fails the test). */
export function codeOf(fn: () => unknown): WireErrorCode | 'no error' {
  try {
    fn();
    return 'no error';
  } catch (e) {
    expect(e).toBeInstanceOf(WireError);
    return (e as WireError).code;
  }
}
