// Covers: src/core/format.ts
import { describe, expect, it } from 'vitest';
import { briefly, StepError, UsageError } from '../../src/core/errors.js';
import { formatDuration } from '../../src/core/format.js';

describe('formatDuration', () => {
  it.each([
    [800, '0.8 s'],
    [9_940, '9.9 s'],
    [42_300, '42 s'],
    [192_000, '3 min 12 s'],
    [3_900_000, '1 h 05 min'],
  ])('%i ms reads "%s"', (ms, text) => expect(formatDuration(ms)).toBe(text));
});

describe('briefly (one line for a status table)', () => {
  it("keeps the program's error line, not the hint after it", () => {
    const e = new StepError({
      step: 'dump production',
      commandLine: 'pg_dump --format=directory',
      outputTail:
        'pg_dump: error: connection to server at "db", port 1 failed: Connection refused\n\tIs the server running on that host?\n',
      reason: 'exit status 1',
    });
    expect(briefly(e)).toBe(
      'dump production failed: exit status 1 (pg_dump: error: connection to server at "db", port 1 failed: Connection refused)',
    );
  });
  it('is the message alone for other errors', () => {
    expect(briefly(new UsageError('bad'))).toBe('bad');
  });
});
