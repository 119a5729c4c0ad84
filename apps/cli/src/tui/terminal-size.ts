/**
 * The terminal's size as React state: ink re-lays out its last frame on a resize but
 * does not re-run components, so a layout computed from the row count (the chat fills
 * the screen exactly) would keep the old height and push the header off screen.
 */
import { useEffect, useState } from 'react';
import { useStdout } from 'ink';

export interface TerminalSize {
  readonly columns: number;
  readonly rows: number;
}

/** Assumed when the output is not a terminal (tests): the classic 80x24. */
const DEFAULT_SIZE: TerminalSize = { columns: 80, rows: 24 };

export function useTerminalSize(onResize?: () => void): TerminalSize {
  const { stdout } = useStdout();
  const read = (): TerminalSize => ({
    columns: stdout.columns || DEFAULT_SIZE.columns,
    rows: stdout.rows || DEFAULT_SIZE.rows,
  });
  const [size, setSize] = useState(read);
  useEffect(() => {
    const resized = (): void => {
      onResize?.();
      setSize(read());
    };
    stdout.on('resize', resized);
    return () => {
      stdout.off('resize', resized);
    };
    // `read` and `onResize` only close over stdout.
  }, [stdout]);
  return size;
}
