/**
 * host:port parsing and the Host-header check shared by the HTTP listeners (metrics, WebSocket). A browser lets any
 * web page reach a loopback port; only a Host naming loopback or the bound address is a request meant for us, the
 * rest is DNS rebinding (SECURITY.md).
 */
import type { AddressInfo } from 'node:net';

/** Splits `host:port` as Go's net.SplitHostPort does (`[::1]:9090`; `:9090` for every interface). */
export function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d{1,5})$/.exec(addr);
  if (!m || Number(m[3]) > 65535) throw new Error(`address ${addr}: want host:port`);
  return { host: m[1] ?? m[2] ?? '', port: Number(m[3]) };
}

/** True when a Host header names a loopback host or the address the listener is bound to. */
export function isAllowedHost(hostHeader: string | undefined, bound: AddressInfo | undefined): boolean {
  if (!hostHeader) return false;
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(hostHeader);
  if (!m) return false;
  const host = (m[1] ?? m[2] ?? '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host)) return true;
  return bound !== undefined && host === bound.address.toLowerCase();
}

/** `http://host:port` as a URL authority for a bound address. */
export function formatAddress(a: AddressInfo): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
