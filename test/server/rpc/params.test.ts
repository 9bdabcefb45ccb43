/**
 * The params gate (claustrum-wire.md §3, issue 2 "Validation order"): absent params are refused for every
 * non-server method, mistyped members and non-object params are refused and never coerced, unknown keys are
 * ignored, integer fields take exactly Go's uint64 literals, and no key can reach an object prototype.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, fixture } from '../../helpers/daemon.js';
import { b64, type RpcClient } from '../../helpers/rpc.js';
import { errorLine, exchange, line, rawReply } from '../../helpers/wire.js';

let d: Daemon;
let c: RpcClient;
/** A connection that never receives frames, for exchanges that read the next line. */
let quiet: RpcClient;
beforeAll(async () => {
  d = await Daemon.start();
  c = await d.client();
  quiet = await d.client();
});
afterAll(() => d.stop());

const INVALID = (idJson: string) => errorLine(idJson, -32602, 'Invalid params');
const PROCESS_METHODS = ['process.spawn', 'process.stdin', 'process.kill', 'process.killAndWait', 'process.reattach'];

let seq = 0;

/**
 * Sends one request line whose params member is the JSON text given, verbatim, and returns the raw reply. The wire
 * id is unique (frames and other replies share the connection); the returned line shows it as `id`, so expectations
 * read as whole lines.
 */
async function withParams(method: string, paramsJson: string, id = 1): Promise<string> {
  const wireId = `p${++seq}`;
  c.sendRaw(`{"jsonrpc":"2.0","id":"${wireId}","method":"${method}","params":${paramsJson},"auth":${JSON.stringify(d.token)}}\n`);
  return (await rawReply(c, wireId)).replace(`"id":"${wireId}"`, `"id":${id}`);
}

/** The same for a whole request line given as an object (no params text to control). */
async function request(fields: Record<string, unknown>): Promise<string> {
  const wireId = `r${++seq}`;
  c.sendRaw(`${line(d.token, { ...fields, id: wireId })}\n`);
  return (await rawReply(c, wireId)).replace(`"id":"${wireId}"`, '"id":1');
}

describe('absent or non-object params', () => {
  it.each(PROCESS_METHODS)('%s without params is Invalid params', async (method) => {
    expect(await request({ method })).toBe(INVALID('1'));
  });

  it.each(PROCESS_METHODS.flatMap((m) => ['"x"', '[]', '[{"id":"a"}]', '5', 'true'].map((p) => [m, p])))(
    '%s with params %s is Invalid params',
    async (method, params) => {
      expect(await withParams(method, params)).toBe(INVALID('1'));
    },
  );

  // [inferred from Go in the reference] params:null is present, and decodes to all-defaults.
  it('treats params:null as present and empty', async () => {
    expect(await withParams('process.spawn', 'null')).toBe(errorLine('1', -32602, 'Process ID is required'));
    expect(await withParams('process.stdin', 'null')).toBe(errorLine('1', -32602, 'Process not found'));
    expect(await withParams('process.kill', 'null')).toBe('{"jsonrpc":"2.0","id":1,"result":{"success":true}}');
    expect(await withParams('process.killAndWait', 'null')).toBe(errorLine('1', -32602, 'Process ID is required'));
    expect(await withParams('process.reattach', 'null')).toBe(errorLine('1', -32602, 'Process ID is required'));
  });

  it('accepts {} and runs the method checks', async () => {
    expect(await withParams('process.spawn', '{}')).toBe(errorLine('1', -32602, 'Process ID is required'));
    expect(await withParams('process.stdin', '{}')).toBe(errorLine('1', -32602, 'Process not found'));
    expect(await withParams('process.kill', '{}')).toBe('{"jsonrpc":"2.0","id":1,"result":{"success":true}}');
  });
});

describe('server.* ignores params entirely', () => {
  it.each(['"x"', '[1,2]', '5', 'null', '{"a":1}', '{"id":5,"offset":-1}'])('server.ping with params %s', async (params) => {
    expect(await withParams('server.ping', params, 2)).toBe('{"jsonrpc":"2.0","id":2,"result":{"pong":true}}');
  });

  it('server.capabilities with mistyped params', async () => {
    const reply = JSON.parse(await withParams('server.capabilities', '"x"', 3));
    expect(reply.result.methods).toContain('server.ping');
  });
});

describe('mistyped members are refused, never coerced', () => {
  it.each([
    ['process.spawn', '{"id":5,"command":"true"}'],
    ['process.spawn', '{"id":"t","command":["true"]}'],
    ['process.spawn', '{"id":"t","command":"true","args":"x"}'],
    ['process.spawn', '{"id":"t","command":"true","args":[1]}'],
    ['process.spawn', '{"id":"t","command":"true","args":{"0":"a"}}'],
    ['process.spawn', '{"id":"t","command":"true","env":{"A":1}}'],
    ['process.spawn', '{"id":"t","command":"true","env":{"A":true}}'],
    ['process.spawn', '{"id":"t","command":"true","env":{"A":{"B":"c"}}}'],
    ['process.spawn', '{"id":"t","command":"true","env":"A=1"}'],
    ['process.spawn', '{"id":"t","command":"true","env":["A=1"]}'],
    ['process.spawn', '{"id":"t","command":"true","cwd":1}'],
    ['process.spawn', '{"id":"t","command":"true","wantPid":"yes"}'],
    ['process.spawn', '{"id":"t","command":"true","wantPid":1}'],
    ['process.stdin', '{"id":"t","data":5}'],
    ['process.stdin', '{"id":"t","data":["QQ=="]}'],
    ['process.stdin', '{"id":"t","offset":"4"}'],
    ['process.stdin', '{"id":1}'],
    ['process.kill', '{"id":"t","signal":9}'],
    ['process.kill', '{"id":1}'],
    ['process.killAndWait', '{"id":"t","timeoutMs":"100"}'],
    ['process.killAndWait', '{"id":"t","escalate":"false"}'],
    ['process.killAndWait', '{"id":"t","escalate":0}'],
    ['process.killAndWait', '{"id":"t","signal":["KILL"]}'],
    ['process.reattach', '{"id":"t","fromSeq":"0"}'],
    ['process.reattach', '{"id":"t","wantPid":1}'],
  ])('%s %s', async (method, params) => {
    expect(await withParams(method, params)).toBe(INVALID('1'));
  });

  it('spawns nothing when a member is mistyped', async () => {
    await withParams('process.spawn', '{"id":"never","command":"true","args":"x"}');
    const r = await c.call('process.reattach', { id: 'never' });
    expect(r).toEqual({ found: false, running: false, firstSeq: 0, lastSeq: 0, stdinApplied: 0 });
  });

  it('counts null members as absent, and a null element of args as the empty string', async () => {
    const reply = await withParams(
      'process.spawn',
      '{"id":"nulls","command":"sh","args":["-c","printf \'[%s]\' \\"$1\\"","sh",null],"cwd":null,"env":null,"wantPid":null}',
    );
    expect(reply).toBe('{"jsonrpc":"2.0","id":1,"result":{"success":true}}');
    await c.waitExit('nulls');
    expect(c.output('nulls').toString()).toBe('[]');
  });

  it('ignores unknown keys', async () => {
    const reply = await withParams('process.spawn', '{"id":"extra","command":"true","bogus":{"deep":[1,{"x":null}]},"launcher":5,"Zzz":"y"}');
    expect(reply).toBe('{"jsonrpc":"2.0","id":1,"result":{"success":true}}');
    await c.waitExit('extra');
    expect(await withParams('process.kill', '{"id":"extra","signal":"KILL","whatever":[]}')).toBe(
      '{"jsonrpc":"2.0","id":1,"result":{"success":true}}',
    );
  });

  it('matches member names case-insensitively, as Go struct decoding does', async () => {
    expect(await withParams('process.spawn', '{"ID":"caps","Command":"true"}')).toBe('{"jsonrpc":"2.0","id":1,"result":{"success":true}}');
    await c.waitExit('caps');
  });
});

describe('integer fields take exactly the uint64 literals', () => {
  let applied = 0;
  beforeAll(async () => {
    await c.call('process.spawn', { id: 'ints', command: 'cat' });
    applied = (await c.call('process.stdin', { id: 'ints', data: b64('abcd') })).applied;
  });
  afterAll(async () => {
    await c.call('process.kill', { id: 'ints', signal: 'KILL' });
  });

  const refused = ['-1', '4.5', '4.0', '1e2', '1E2', '4e0', '18446744073709551616', '99999999999999999999999', '-0', '"4"', '[4]', 'true'];

  it.each(refused)('offset %s is Invalid params (a live process, so an accepted value would answer otherwise)', async (literal) => {
    expect(applied).toBe(4);
    expect(await withParams('process.stdin', `{"id":"ints","data":"eA==","offset":${literal}}`)).toBe(INVALID('1'));
  });

  it.each(refused)('fromSeq %s is Invalid params', async (literal) => {
    expect(await withParams('process.reattach', `{"id":"nobody","fromSeq":${literal}}`)).toBe(INVALID('1'));
  });

  it.each(refused.filter((l) => l !== '-0'))('timeoutMs %s is Invalid params', async (literal) => {
    expect(await withParams('process.killAndWait', `{"id":"nobody","timeoutMs":${literal}}`)).toBe(INVALID('1'));
  });

  it('offset 18446744073709551615 (2^64-1) is legal: it binds, and is a gap', async () => {
    expect(await withParams('process.stdin', '{"id":"ints","data":"eA==","offset":18446744073709551615}')).toBe(
      errorLine('1', -32003, 'stdin offset gap: offset ahead of applied bytes'),
    );
  });

  it('offset written as 4 and 0 bind (an applied write and a duplicate)', async () => {
    expect(await withParams('process.stdin', '{"id":"ints","data":"eA==","offset":4}')).toBe(
      '{"jsonrpc":"2.0","id":1,"result":{"success":true,"applied":5}}',
    );
    expect(await withParams('process.stdin', '{"id":"ints","data":"eA==","offset":0}')).toBe(
      '{"jsonrpc":"2.0","id":1,"result":{"success":true,"applied":5,"duplicate":true}}',
    );
  });

  it('fromSeq 18446744073709551615 is legal', async () => {
    const reply = JSON.parse(await withParams('process.reattach', '{"id":"nobody","fromSeq":18446744073709551615}'));
    expect(reply.result).toEqual({ found: false, running: false, firstSeq: 0, lastSeq: 0, stdinApplied: 0 });
  });

  it('timeoutMs 18446744073709551615 is legal', async () => {
    expect(await withParams('process.killAndWait', '{"id":"nobody","timeoutMs":18446744073709551615}')).toBe(
      '{"jsonrpc":"2.0","id":1,"result":{"found":false,"died":false}}',
    );
  });
});

describe('prototype poisoning changes nothing and crashes nothing', () => {
  it('a top-level __proto__ cannot supply the token or the version', async () => {
    const tok = JSON.stringify(d.token);
    expect(await exchange(quiet, `{"__proto__":{"auth":${tok}},"jsonrpc":"2.0","id":1,"method":"server.ping"}\n`)).toBe(
      errorLine('1', -32001, 'Unauthorized: invalid or missing auth token'),
    );
    expect(await exchange(quiet, `{"__proto__":{"jsonrpc":"2.0"},"id":2,"method":"server.ping","auth":${tok}}\n`)).toBe(
      errorLine('2', -32600, 'Invalid JSON-RPC version'),
    );
    expect(await exchange(quiet, `{"constructor":{"prototype":{"auth":${tok}}},"jsonrpc":"2.0","id":3,"method":"server.ping"}\n`)).toBe(
      errorLine('3', -32001, 'Unauthorized: invalid or missing auth token'),
    );
  });

  it('a __proto__ inside params cannot supply members', async () => {
    expect(await withParams('process.spawn', '{"__proto__":{"id":"pp","command":"true"}}')).toBe(errorLine('1', -32602, 'Process ID is required'));
    expect(await withParams('process.spawn', '{"id":"pp2","command":"true","__proto__":{"wantPid":true}}')).toBe(
      '{"jsonrpc":"2.0","id":1,"result":{"success":true}}',
    );
    expect(await withParams('process.spawn', '{"id":"pp3","command":"true","env":{"__proto__":{"polluted":"yes"}}}')).toBe(INVALID('1'));
  });

  it('env keys named like prototype members are plain variables of that one child', async () => {
    const f = fixture('print-env');
    const params = `${JSON.stringify({ id: 'protoenv', ...f }).slice(0, -1)},"env":{"__proto__":"x","constructor":"y","toString":"z","hasOwnProperty":"w"}}`;
    expect(await withParams('process.spawn', params)).toBe('{"jsonrpc":"2.0","id":1,"result":{"success":true}}');
    await c.waitExit('protoenv');
    const env = JSON.parse(c.output('protoenv').toString());
    expect(env.constructor).toBe('y');
    expect(env.toString).toBe('z');
    expect(env.hasOwnProperty).toBe('w');
  });

  it('leaves later children and requests untouched', async () => {
    await c.call('process.spawn', { id: 'cleanenv', ...fixture('print-env') });
    await c.waitExit('cleanenv');
    const env = JSON.parse(c.output('cleanenv').toString());
    for (const k of ['polluted', 'constructor', 'toString', 'hasOwnProperty', '__proto__', 'X']) expect(Object.hasOwn(env, k)).toBe(false);
    expect(await exchange(quiet, '{"jsonrpc":"2.0","id":9,"method":"server.ping"}\n')).toBe(
      errorLine('9', -32001, 'Unauthorized: invalid or missing auth token'),
    );
    expect(await withParams('process.spawn', '{"command":"true"}')).toBe(errorLine('1', -32602, 'Process ID is required'));
  });

  it('process ids named like prototype members are ordinary ids', async () => {
    for (const id of ['constructor', 'hasOwnProperty', 'toString', '__proto__']) {
      expect(await c.call('process.reattach', { id })).toEqual({ found: false, running: false, firstSeq: 0, lastSeq: 0, stdinApplied: 0 });
      expect(await c.call('process.stdin', { id, data: '' }).catch((e: Error) => e.message)).toBe('process.stdin failed: -32602 Process not found');
    }
    await withParams('process.spawn', '{"id":"__proto__","command":"sh","args":["-c","echo proto"]}');
    await c.waitExit('__proto__');
    expect(c.output('__proto__').toString()).toBe('proto\n');
    const r = await c.call('process.reattach', { id: '__proto__', fromSeq: 0 });
    expect(r).toMatchObject({ found: true, running: false, firstSeq: 1, lastSeq: 2 });
  });

  it('the daemon is still up', async () => {
    expect(await c.call('server.ping')).toEqual({ pong: true });
    expect(d.alive).toBe(true);
  });
});
