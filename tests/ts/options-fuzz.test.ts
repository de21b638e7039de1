// SPDX-License-Identifier: MIT
// Option objects fuzzed (issue 8, "beyond the list"): every public options
// parser gets arbitrary values (null-prototype objects, bigints, symbols,
// getters that throw excluded) and near-valid objects (known keys with
// arbitrary values, plus stray keys).  Each call either returns options or
// throws a ZcConfigError that names the schema and at least one field,
// with a message that can be shown; never a TypeError or zod's own error.
// Pure JavaScript: host only.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ZcConfigError } from '../../ts/index.ts';
import {
  BufferPoolOptionsSchema,
  checkNetOptions,
  ConnectOptionsSchema,
  DatagramOptionsSchema,
  DEFAULT_SEND_OPTIONS,
  ListenOptionsSchema,
  PairOptionsSchema,
  parseBufferPoolOptions,
  parseRingOptions,
  parseSendFileOptions,
  parseSendOptions,
  resolveSendOptions,
  RingOptionsSchema,
  SendFileOptionsSchema,
  SendOptionsSchema,
  ServerOptionsSchema,
  SocketOptionsSchema,
} from '../../ts/config.ts';
import { parseReceiveOptions, ReceiveOptionsSchema } from '../../ts/recv.ts';
import { IN_VM } from './helpers.ts';

const RUNS = 150;

/** Values of any shape, including the awkward ones. */
const anyValue = fc.anything({
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  maxDepth: 1,
  maxKeys: 4,
  depthSize: 'xsmall',
});

/** A value for a field: the usual suspects first, then anything. */
const fieldValue = fc.oneof(
  fc.constantFrom(0, -1, 1, 2 ** 31, 2 ** 32, 2 ** 53, NaN, Infinity, -0, 1.5, '', '1', 'auto', 'copy', 'zc', true, false, null, undefined),
  fc.integer(),
  fc.bigInt(),
  fc.string(),
  anyValue,
);

/** Objects with some of `keys` (and sometimes a stray key) set to arbitrary values. */
function nearValid(keys: readonly string[]): fc.Arbitrary<Record<string, unknown>> {
  return fc.tuple(
    fc.dictionary(fc.constantFrom(...keys), fieldValue, { maxKeys: keys.length }),
    fc.option(fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), fieldValue), { nil: undefined }),
    fc.boolean(),
  ).map(([o, stray, nullProto]) => {
    const out: Record<string, unknown> = nullProto ? Object.create(null) : {};
    Object.assign(out, o);
    if (stray) out[stray[0]] = stray[1];
    return out;
  });
}

const keysOf = (schema: { shape: Record<string, unknown> }): readonly string[] => Object.keys(schema.shape);
const sendKeys = keysOf(SendOptionsSchema);

const parsers: [name: string, keys: readonly string[], parse: (x: unknown) => unknown][] = [
  ['RingOptions', keysOf(RingOptionsSchema), (x) => parseRingOptions(x as never)],
  ['BufferPoolOptions', keysOf(BufferPoolOptionsSchema), (x) => parseBufferPoolOptions(x as never)],
  ['SendOptions', sendKeys, (x) => parseSendOptions(x as never)],
  // the send hot path: its own quick checks before the schema
  ['SendOptions', sendKeys, (x) => resolveSendOptions(x as never, DEFAULT_SEND_OPTIONS)],
  ['SendFileOptions', keysOf(SendFileOptionsSchema), (x) => parseSendFileOptions(x as never)],
  ['ReceiveOptions', keysOf(ReceiveOptionsSchema), (x) => parseReceiveOptions(x as never)],
  ...(
    [
      ['SocketOptions', SocketOptionsSchema],
      ['ConnectOptions', ConnectOptionsSchema],
      ['ServerOptions', ServerOptionsSchema],
      ['ListenOptions', ListenOptionsSchema],
      ['DatagramOptions', DatagramOptionsSchema],
      ['PairOptions', PairOptionsSchema],
    ] as const
  ).map(([w, schema]) => [w, keysOf(schema), (x: unknown) => checkNetOptions(w, x)] as [string, readonly string[], (x: unknown) => unknown]),
];

/** The outcome of one call: returned, or the ZcConfigError it threw (anything else fails). */
function check(name: string, parse: (x: unknown) => unknown, input: unknown): void {
  let thrown: unknown = null;
  try {
    parse(input);
  } catch (e) {
    thrown = e;
  }
  if (thrown === null) return;
  if (!(thrown instanceof ZcConfigError)) {
    throw new Error(`${name}: threw ${String((thrown as Error)?.name)} (${String((thrown as Error)?.message)}), not a ZcConfigError`);
  }
  expect(thrown.schema).toBe(name);
  expect(thrown.issues.length).toBeGreaterThan(0);
  expect(typeof thrown.field).toBe('string');
  expect(thrown.message).toMatch(new RegExp(`^invalid ${name}: `));
  for (const i of thrown.issues) {
    expect(typeof i.field).toBe('string');
    expect(typeof i.allowed).toBe('string');
    expect(i.allowed.length).toBeGreaterThan(0);
  }
}

describe.skipIf(IN_VM)('every public options parser, fuzzed (host only: pure JavaScript)', () => {
  it.each(parsers.map(([n, k, p], i) => [`${n}#${i}`, n, k, p] as const))('%s: returns, or throws a ZcConfigError naming the field', (_label, name, keys, parse) => {
    fc.assert(fc.property(anyValue, (x) => check(name, parse, x)), { numRuns: RUNS });
    fc.assert(fc.property(nearValid(keys), (x) => check(name, parse, x)), { numRuns: RUNS });
  });
});

describe.skipIf(IN_VM)('found by the fuzzing above', () => {
  it('a value that neither JSON nor String() can show (no prototype, a bigint inside) is still reported', () => {
    const odd = Object.assign(Object.create(null) as object, { x: 0n });
    expect(() => parseRingOptions({ entries: odd } as never)).toThrow(/RingOptions\.entries = \[object Object\]: expected/);
  });
});
