import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommit, isTransientConflict } from '../src/store/group-commit.js';

/** A writer that records its batches and answers each item doubled, when released. */
function recorder() {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const write = async (items: number[]) => {
    batches.push(items);
    await new Promise<void>((r) => gates.push(r));
    return items.map((i) => i * 2);
  };
  return { batches, gates, write };
}

describe('group commit', () => {
  it('writes calls of one tick as one batch, and calls made while it is written as the next', async () => {
    const w = recorder();
    const gc = new GroupCommit(w.write);
    const first = [1, 2, 3].map((i) => gc.run(i));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(w.batches, [[1, 2, 3]]);
    const second = [4, 5].map((i) => gc.run(i)); // while [1, 2, 3] is being written
    await new Promise((r) => setImmediate(r));
    assert.equal(w.batches.length, 1, 'nothing else is written while a batch is in flight');
    w.gates.shift()!();
    assert.deepEqual(await Promise.all(first), [2, 4, 6]);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(w.batches[1], [4, 5]);
    w.gates.shift()!();
    assert.deepEqual(await Promise.all(second), [8, 10]);
  });

  it('a lone call is written at once, without waiting for company', async () => {
    const gc = new GroupCommit(async (items: string[]) => items.map((s) => s.toUpperCase()));
    assert.equal(await gc.run('a'), 'A');
    assert.equal(await gc.run('b'), 'B');
  });

  it('writes a batch again after a deadlock, and fails every caller on other errors', async () => {
    let calls = 0;
    const gc = new GroupCommit(
      async (items: number[]) => {
        calls++;
        if (calls === 1) throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
        if (items.includes(13)) throw Object.assign(new Error('broken'), { code: '23505' });
        return items;
      },
      { retryIf: isTransientConflict },
    );
    assert.deepEqual(await Promise.all([gc.run(1), gc.run(2)]), [1, 2]);
    assert.equal(calls, 2, 'the deadlocked batch was written once more');
    const results = await Promise.allSettled([gc.run(12), gc.run(13)]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected'],
      'one failed statement fails its whole batch',
    );
    assert.equal(calls, 3, 'a constraint error is not retried');
    assert.equal(await gc.run(7), 7, 'later calls go on');
  });

  it('gives up on a conflict that keeps coming back', async () => {
    let calls = 0;
    const gc = new GroupCommit(
      async (): Promise<number[]> => {
        calls++;
        throw Object.assign(new Error('could not serialize access'), { code: '40001' });
      },
      { retryIf: isTransientConflict },
    );
    await assert.rejects(gc.run(1), /could not serialize/);
    assert.equal(calls, 4);
  });
});
