/**
 * Several observers as one: each hook present on any part calls that hook on every part that has it, in order.
 * Observers are bags of optional hooks (metrics, the orphan registry), so no emitter is needed.
 */
type Hooks = Record<string, unknown>;

export function compose<T extends object>(...parts: (Partial<T> | undefined)[]): T {
  const present = parts.filter((p): p is Partial<T> => p !== undefined) as Hooks[];
  const names = new Set<string>();
  for (const p of present) {
    for (let o: object | null = p; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
      for (const k of Object.getOwnPropertyNames(o)) if (k !== 'constructor' && typeof (p as Hooks)[k] === 'function') names.add(k);
    }
  }
  const out: Hooks = {};
  for (const name of names) {
    const fns = present.filter((p) => typeof p[name] === 'function').map((p) => (p[name] as (...a: unknown[]) => unknown).bind(p));
    // A hook some part answers with a promise (the orphan record before a spawn's reply) is awaited as a whole.
    out[name] = (...args: unknown[]) => {
      let waits: Promise<unknown>[] | undefined;
      for (const fn of fns) {
        const r: unknown = fn(...args);
        if (r instanceof Promise) (waits ??= []).push(r);
      }
      return waits && Promise.all(waits).then(() => undefined);
    };
  }
  return out as T;
}
