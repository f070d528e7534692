import { describe, expect, it } from 'vitest';
import { ListenerError, MemoryEventSink } from '../../local/memory-events';

describe('MemoryEventSink', () => {
  it('should keep events and call subscribers with each batch', async () => {
    const sink = new MemoryEventSink<number>();
    const seen: number[][] = [];
    const unsubscribe = sink.subscribe((batch) => seen.push([...batch]));
    await sink.publish([1, 2]);
    await sink.publish([]);
    await sink.publish([3]);
    unsubscribe();
    await sink.publish([4]);
    expect(seen).toEqual([[1, 2], [3]]);
    expect(sink.events()).toEqual([1, 2, 3, 4]);
  });

  it('should drop the oldest events past the bound', async () => {
    const sink = new MemoryEventSink<number>({ maxEvents: 3 });
    await sink.publish([1, 2, 3, 4, 5]);
    expect(sink.events()).toEqual([3, 4, 5]);
    expect(sink.dropped).toBe(2);
  });

  it('should run every listener and report the ones that failed', async () => {
    const sink = new MemoryEventSink<string>();
    const seen: string[] = [];
    sink.subscribe(() => {
      throw new Error('view crashed');
    });
    sink.subscribe((batch) => seen.push(...batch));
    const published = sink.publish(['a']);
    await expect(published).rejects.toBeInstanceOf(ListenerError);
    await expect(published).rejects.toThrow(/1 event listener\(s\) failed: view crashed/);
    expect(seen).toEqual(['a']);
    expect(sink.events()).toEqual(['a']);
  });
});
